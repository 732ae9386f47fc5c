//! Prints the `OAuth2Client` CRD as YAML: `cargo run -p edgeid-sidecar --bin crdgen >
//! infra/k8s/crd.yaml` (a test checks that the checked-in file equals this output).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match edgeid_sidecar::crd::crd_yaml() {
        Ok(yaml) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(yaml.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::FAILURE
        }
    }
}

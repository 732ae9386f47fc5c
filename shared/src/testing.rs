//! Test support: a fixed clock, a seeded RNG and an in-memory host that drives whole flows
//! through [`crate::handle`] with no server (the rustls / quinn-proto way).

use std::cell::{Cell, RefCell};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore as _, SeedableRng as _};

use crate::ports::{PortError, Rng};

/// A deterministic RNG for tests. Never use outside tests.
pub struct SeededRng(RefCell<ChaCha20Rng>);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(RefCell::new(ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Rng for SeededRng {
    fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
        self.0.borrow_mut().fill_bytes(buf);
        Ok(())
    }
}

/// A clock that moves only when told.
pub struct FixedClock(Cell<i64>);

impl FixedClock {
    pub fn new(now: i64) -> Self {
        Self(Cell::new(now))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.set(self.0.get() + seconds);
    }

    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

#[cfg(feature = "native")]
pub use memory::{ADMIN_TOKEN, ISSUER, MemoryHost};

#[cfg(feature = "native")]
mod memory {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::{FixedClock, SeededRng};
    use crate::mail::Mail;
    use crate::platform::native::{NativeKv, NativeSql};
    use crate::ports::{Clock, Config, PortError, Ports, Rng, UnixTime};
    use crate::{Function, Request, Response};

    pub const ADMIN_TOKEN: &str = "test-admin-token";
    pub const ISSUER: &str = "https://id.example.test";

    /// In-memory SQLite, in-memory KV, a fixed clock and a seeded RNG.
    pub struct MemoryHost {
        pub sql: NativeSql,
        pub credentials: NativeSql,
        pub kv: NativeKv,
        pub clock: FixedClock,
        pub rng: SeededRng,
        pub vars: HashMap<String, String>,
        /// The mails "sent". A test double of the Mailer port: the real one POSTs to an
        /// outbound mail API, which cannot run in memory. It records a mail only when a mail
        /// API is configured (`mail_api_url`, `mail_from`), and refuses as the real port does
        /// otherwise, so flows see the same configuration rules.
        pub mails: RefCell<Vec<Mail>>,
    }

    impl MemoryHost {
        /// A migrated host with issuer, admin token and key-encryption key set, and keys
        /// provisioned.
        pub async fn new() -> Self {
            let host = Self::bare();
            let settings = crate::config::Settings::load(&host).expect("test settings are valid");
            for alg in crate::jose::Alg::ALL {
                crate::keys::rotate(&host, &settings, host.now(), alg)
                    .await
                    .expect("provisioning keys in memory");
            }
            host
        }

        /// A migrated host without keys.
        pub fn bare() -> Self {
            let sql = NativeSql::in_memory().expect("in-memory SQLite");
            sql.migrate().expect("migrations apply");
            let credentials = NativeSql::in_memory().expect("in-memory SQLite");
            credentials
                .migrate_credentials()
                .expect("credentials migrations apply");
            let mut vars = HashMap::new();
            vars.insert("issuer".into(), ISSUER.into());
            vars.insert("admin_token".into(), ADMIN_TOKEN.into());
            vars.insert(
                "key_encryption_key".into(),
                crate::crypto::b64url(&[7u8; 32]),
            );
            Self {
                sql,
                credentials,
                kv: NativeKv::in_memory().expect("in-memory KV"),
                clock: FixedClock::new(1_700_000_000),
                rng: SeededRng::new(42),
                vars,
                mails: RefCell::default(),
            }
        }

        /// Routes like the native host: by path to the function that serves it.
        pub async fn request(&self, req: Request) -> Response {
            match Function::for_path(req.uri().path()) {
                Some(f) => crate::handle(f, self, req).await,
                None => crate::web::not_found(),
            }
        }
    }

    impl Clock for MemoryHost {
        fn now(&self) -> UnixTime {
            self.clock.get()
        }
    }

    impl Rng for MemoryHost {
        fn fill(&self, buf: &mut [u8]) -> Result<(), PortError> {
            self.rng.fill(buf)
        }
    }

    impl Config for MemoryHost {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
    }

    impl Ports for MemoryHost {
        type Sql = NativeSql;
        type Kv = NativeKv;

        fn sql(&self) -> &NativeSql {
            &self.sql
        }

        fn credentials(&self) -> &NativeSql {
            &self.credentials
        }

        fn kv(&self) -> &NativeKv {
            &self.kv
        }

        async fn send_mail(&self, mail: &Mail) -> Result<(), PortError> {
            crate::mail::api_request(self, mail)?;
            self.mails.borrow_mut().push(mail.clone());
            Ok(())
        }
    }
}

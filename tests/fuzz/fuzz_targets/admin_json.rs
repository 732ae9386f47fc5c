//! Admin API JSON bodies: client registrations (`ClientInput`), users (`UserInput`,
//! `UserPatch`) and apps (`AppInput`), deserialized and validated as the admin API does.
#![no_main]

#[path = "common.rs"]
mod common;

use edgeid::client::ClientInput;
use edgeid::user::{UserInput, UserPatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rng = common::CountingRng(std::cell::Cell::new(0));
    if let Ok(input) = serde_json::from_slice::<ClientInput>(data) {
        let existing = common::client();
        let _ = input.clone().validate(&rng, 0, None);
        let _ = input.validate(&rng, 0, Some(&existing));
    }
    if let Ok(input) = serde_json::from_slice::<UserInput>(data) {
        let _ = input.validate("user-1".to_owned(), 0);
    }
    if let Ok(patch) = serde_json::from_slice::<UserPatch>(data) {
        let base = UserInput {
            email: "alice@example.com".into(),
            username: "alice".into(),
            ..UserInput::default()
        };
        if let Ok((user, _)) = base.validate("user-1".to_owned(), 0) {
            let _ = patch.apply(&user, 1);
        }
    }
    if let Ok(app) = serde_json::from_slice::<edgeid::app::AppInput>(data) {
        let _ = app.validate(0);
    }
});

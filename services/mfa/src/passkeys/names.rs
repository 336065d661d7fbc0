//! The name a new passkey gets: its authenticator's, when the AAGUID the authenticator reports at
//! registration is a well-known one, else "Passkey" (GoTrue's `PasskeyFriendlyName`). Users rename
//! passkeys with `PATCH /passkeys/{id}`.
//!
//! The table holds the authenticators most passkeys come from; AAGUIDs are public identifiers,
//! published by the vendors and collected at github.com/passkeydeveloper/passkey-authenticator-aaguids.

use uuid::Uuid;

const FALLBACK: &str = "Passkey";

const KNOWN_AUTHENTICATORS: &[(&str, &str)] = &[
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "Apple Passwords"),
    ("dd4ec289-e01d-41c9-bb89-70fa845d4bf2", "iCloud Keychain (Managed)"),
    ("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"),
    ("adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"),
    ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
    ("6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"),
    ("d3452668-01fd-4c12-926c-83a4204853aa", "Microsoft Password Manager"),
    ("53414d53-554e-4700-0000-000000000000", "Samsung Pass"),
    ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
    ("d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"),
    ("531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"),
    ("b84e4048-15dc-4dd0-8640-f4f60813c8af", "NordPass"),
    ("f3809540-7f14-49c1-a8b3-8f813b225541", "Enpass"),
    ("50726f74-6f6e-5061-7373-50726f746f6e", "Proton Pass"),
    ("fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"),
];

pub fn friendly_name(aaguid: Option<Uuid>) -> String {
    let known = aaguid.and_then(|aaguid| {
        let text = aaguid.to_string();
        KNOWN_AUTHENTICATORS
            .iter()
            .find(|(id, _)| *id == text)
            .map(|(_, name)| *name)
    });
    known.unwrap_or(FALLBACK).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_authenticators_are_named_and_others_are_passkeys() {
        let icloud = Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").ok();
        assert_eq!(friendly_name(icloud), "Apple Passwords");
        assert_eq!(friendly_name(Some(Uuid::new_v4())), "Passkey");
        assert_eq!(friendly_name(None), "Passkey");
        for (id, _) in KNOWN_AUTHENTICATORS {
            assert!(Uuid::parse_str(id).is_ok(), "{id} is not a UUID");
        }
    }
}

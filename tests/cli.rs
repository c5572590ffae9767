//! The terminal front ends, run as real processes.

use watt_e2e::{run, TempDir};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn keys_new_then_show_gives_the_same_valid_address() {
    let dir = TempDir::new("keys");
    let d = dir.path().to_str().unwrap();
    let new = run("watt", &["--data-dir", d, "keys", "new", "--json"], None);
    assert_eq!(new.code, 0, "{}", new.stderr);
    let v = json(&new.stdout);
    let address = v["address"].as_str().unwrap().to_string();
    assert!(address.starts_with('W') && address.len() == 56);
    assert_eq!(v["mnemonic"].as_str().unwrap().split(' ').count(), 24);

    let show = run("watt", &["--data-dir", d, "keys", "show"], None);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_eq!(show.stdout.trim(), address);

    let check = run("watt", &["address", "check", &address], None);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(check.stdout.contains("valid account address"));

    // A second `keys new` would overwrite the wallet: refused.
    let again = run("watt", &["--data-dir", d, "keys", "new"], None);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn restore_from_words_gives_the_original_address() {
    let a = TempDir::new("restore-a");
    let new = run("watt", &["--data-dir", a.path().to_str().unwrap(), "keys", "new", "--json"], None);
    let v = json(&new.stdout);
    let b = TempDir::new("restore-b");
    let words = v["mnemonic"].as_str().unwrap();
    let restored = run("watt", &["--data-dir", b.path().to_str().unwrap(), "keys", "restore", "--json"], Some(words));
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(json(&restored.stdout)["address"], v["address"]);
    // The secret never appears in logs or on stderr.
    assert!(!restored.stderr.contains(words.split(' ').next().unwrap()) || restored.stderr.is_empty());
}

#[test]
fn restore_with_a_wrong_word_names_it() {
    let dir = TempDir::new("restore-bad");
    let phrase = "abandon ".repeat(23) + "zzzz";
    let r = run("watt", &["--data-dir", dir.path().to_str().unwrap(), "keys", "restore"], Some(&phrase));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("word 24") && r.stderr.contains("zzzz"), "{}", r.stderr);
}

#[test]
fn address_check_names_the_problem() {
    let dir = TempDir::new("check");
    let new = run("watt", &["--data-dir", dir.path().to_str().unwrap(), "keys", "new", "--json"], None);
    let address = json(&new.stdout)["address"].as_str().unwrap().to_string();

    // One character changed: checksum.
    let mut typo: Vec<char> = address.chars().collect();
    typo[20] = if typo[20] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let r = run("watt", &["address", "check", &typo], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);

    let r = run("watt", &["address", "check", &address[..50]], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("wrong length: 50"), "{}", r.stderr);

    let r = run("watt", &["address", "check", &address.to_lowercase()], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid character"), "{}", r.stderr);
}

#[test]
fn keys_show_without_a_wallet_says_what_to_do() {
    let dir = TempDir::new("nokey");
    let r = run("watt", &["--data-dir", dir.path().to_str().unwrap(), "keys", "show"], None);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("watt keys new"), "{}", r.stderr);
}

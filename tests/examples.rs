//! Every example config under examples/config passes `vmmi check`, and the example systemd
//! unit calls the binary with verbs and flags that exist.

use std::process::Command;

const VMMI: &str = env!("CARGO_BIN_EXE_vmmi");

#[test]
fn every_example_config_passes_vmmi_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let out = Command::new(VMMI)
                .arg("check")
                .arg("--config")
                .arg(&p)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.starts_with("ok:"),
                "{}: {text}{}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "example configs found: {n}");
}

#[test]
fn the_systemd_unit_uses_real_verbs() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/vmmi.service"),
    )
    .unwrap();
    for line in unit
        .lines()
        .filter(|l| l.starts_with("Exec") && l.contains("/vmmi "))
    {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        // `vmmi <verb> --help` succeeds for the verb, and every --flag appears in its help
        let verb = args[0];
        let out = Command::new(VMMI).args([verb, "--help"]).output().unwrap();
        assert!(out.status.success(), "{line}");
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(
                help.contains(flag),
                "{flag} of {line:?} is not a flag of `vmmi {verb}`"
            );
        }
    }
}

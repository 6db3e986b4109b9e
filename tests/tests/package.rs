//! The Debian package built by `packaging/build-deb`: its control data, its
//! contents, and the installed files (extracted with `dpkg -x` into a
//! temporary root): binaries that run, generated completions and man pages,
//! the configuration as a conffile, and units that `systemd-analyze verify`
//! accepts.
//!
//! The package is looked for at `$CASMAN_DEB`, else
//! `<target>/debian/casman.deb`. When it was not built the tests print a note
//! and pass, unless `CASMAN_REQUIRE_DEB=1` (set by `.ci/run`, which builds it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

fn deb() -> Option<PathBuf> {
    let path = std::env::var_os("CASMAN_DEB").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/package-<hash>
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        target.join("debian/casman.deb")
    });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CASMAN_REQUIRE_DEB").is_none(),
        "{} missing: run packaging/build-deb first",
        path.display()
    );
    eprintln!("SKIPPED: {} not built (run packaging/build-deb)", path.display());
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn control_data_and_maintainer_scripts() {
    let Some(deb) = deb() else { return };
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for want in ["Package: casman", "Architecture: amd64", "Section: science", "systemd"] {
        assert!(info.contains(want), "dpkg-deb --info lacks {want:?}:\n{info}");
    }
    let conffiles = run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/casman/casmand.toml");
    let postinst = run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("postinst"));
    assert!(postinst.contains("systemd-sysusers casman.conf"), "{postinst}");
    assert!(postinst.contains("deb-systemd-helper enable casmand.service"), "{postinst}");
    // Enabled, not started: the only start-like action restarts a running daemon on upgrade.
    let code: Vec<&str> = postinst.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    assert!(!code.iter().any(|l| l.contains("invoke start") || l.contains("systemctl start")), "{postinst}");
    assert!(postinst.contains("try-restart casmand.service"), "{postinst}");
    let prerm = run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("prerm"));
    assert!(prerm.contains("stop casmand.socket casmand.service"), "{prerm}");
}

#[test]
fn contents_list_every_installed_file() {
    let Some(deb) = deb() else { return };
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/casmand",
        "./usr/bin/casmanctl",
        "./etc/casman/casmand.toml",
        "./usr/lib/systemd/system/casmand.service",
        "./usr/lib/systemd/system/casmand.socket",
        "./usr/lib/systemd/system/casman-notify-failure@.service",
        "./usr/lib/sysusers.d/casman.conf",
        "./usr/lib/tmpfiles.d/casman.conf",
        "./usr/share/bash-completion/completions/casmanctl",
        "./usr/share/zsh/vendor-completions/_casmanctl",
        "./usr/share/fish/vendor_completions.d/casmanctl.fish",
        "./usr/share/man/man1/casmanctl.1.gz",
        "./usr/share/man/man8/casmand.8.gz",
        "./usr/share/doc/casman/copyright",
        "./usr/share/casman/proto/casman/v1/parts.proto",
    ] {
        assert!(contents.lines().any(|l| l.ends_with(path)), "the package lacks {path}:\n{contents}");
    }
    let bin_line = contents.lines().find(|l| l.ends_with("./usr/bin/casmand")).unwrap();
    assert!(bin_line.starts_with("-rwxr-xr-x 0/0"), "{bin_line}");
}

#[test]
fn installed_files_work_and_units_verify() {
    let Some(deb) = deb() else { return };
    let root = tempfile::Builder::new().prefix("casman-deb-").tempdir().unwrap();
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));
    let r = root.path();

    let version = run(Command::new(r.join("usr/bin/casmanctl")).arg("--version"));
    assert!(version.starts_with("casmanctl "), "{version}");
    let version = run(Command::new(r.join("usr/bin/casmand")).arg("--version"));
    assert!(version.starts_with("casmand "), "{version}");
    for man in ["usr/share/man/man1/casmanctl.1.gz", "usr/share/man/man8/casmand.8.gz"] {
        let roff = run(Command::new("gzip").arg("-dc").arg(r.join(man)));
        assert!(roff.contains(".TH"), "{man} is not a man page");
    }
    let bash = std::fs::read_to_string(r.join("usr/share/bash-completion/completions/casmanctl")).unwrap();
    assert!(bash.contains("casmanctl") && bash.contains("parts"), "bash completion");
    let fish = std::fs::read_to_string(r.join("usr/share/fish/vendor_completions.d/casmanctl.fish")).unwrap();
    assert!(fish.contains("complete -c casmanctl"), "fish completion");
    let zsh = std::fs::read_to_string(r.join("usr/share/zsh/vendor-completions/_casmanctl")).unwrap();
    assert!(zsh.starts_with("#compdef casmanctl"), "zsh completion");
    let toml = std::fs::read_to_string(r.join("etc/casman/casmand.toml")).unwrap();
    assert!(toml.starts_with("# casmand configuration"), "{toml}");
    // The installed configuration file loads and holds valid values.
    run(Command::new(r.join("usr/bin/casmand"))
        .arg("--config")
        .arg(r.join("etc/casman/casmand.toml"))
        .arg("--print-config")
        .env_remove("CREDENTIALS_DIRECTORY"));

    // systemd-analyze verify, with ExecStart= pointing at the extracted binary.
    let units = r.join("units");
    std::fs::create_dir_all(&units).unwrap();
    let service = std::fs::read_to_string(r.join("usr/lib/systemd/system/casmand.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/bin/casmand\n"), "{service}");
    let service = service
        .replace("ExecStart=/usr/bin/casmand", &format!("ExecStart={}", r.join("usr/bin/casmand").display()));
    std::fs::write(units.join("casmand.service"), service).unwrap();
    std::fs::copy(r.join("usr/lib/systemd/system/casmand.socket"), units.join("casmand.socket")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(units.join("casmand.service"))
        .arg(units.join("casmand.socket"))
        .output();
    let Ok(out) = out else {
        eprintln!("SKIPPED: systemd-analyze not installed; units not verified");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");

    // The check is real: a unit whose binary is missing fails it.
    let broken = std::fs::read_to_string(units.join("casmand.service"))
        .unwrap()
        .replace("usr/bin/casmand", "usr/bin/casmand-missing");
    std::fs::write(units.join("casmand.service"), broken).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(units.join("casmand.service"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "systemd-analyze verify accepted a missing ExecStart binary");
}

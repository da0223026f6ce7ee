//! Tables for loading the configuration: file, environment and flags, and
//! the errors each bad value gets.

#![allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error

use std::path::Path;

use figment::Jail;

use super::*;

fn load(jail: &Jail, file: Option<&str>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let path = file.map(|_| jail.directory().join("bosun.toml"));
    Config::load(path.as_deref(), Config::env(), overrides)
}

#[test]
fn defaults_are_valid_and_local() {
    Jail::expect_with(|jail| {
        let config = load(jail, None, &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:7070");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:7071");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.lessons.enabled);
        assert_eq!(config.lessons.dedup_window, Duration::from_secs(3600));
        Ok(())
    });
}

#[test]
fn flags_win_over_env_over_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bosun.toml",
            r#"
            data_dir = "/from/file"
            grpc_addr = "127.0.0.1:1000"
            http_addr = "127.0.0.1:1001"
            drain_timeout = "3s"
            [lessons]
            dedup_window = "10m"
            "#,
        )?;
        jail.set_env("BOSUN_GRPC_ADDR", "127.0.0.1:2000");
        jail.set_env("BOSUN_LESSONS__ENABLED", "false");
        jail.set_env("BOSUN_CONFIG", "ignored: names the file");
        let overrides = Overrides {
            grpc_addr: Some("127.0.0.1:3000".parse().unwrap()),
            ..Overrides::default()
        };
        let config = load(jail, Some("bosun.toml"), &overrides).unwrap();
        assert_eq!(
            config.data_dir,
            PathBuf::from("/from/file"),
            "file over default"
        );
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:1001");
        assert_eq!(
            config.grpc_addr.to_string(),
            "127.0.0.1:3000",
            "flag over env"
        );
        assert!(!config.lessons.enabled, "env over default");
        assert_eq!(config.lessons.dedup_window, Duration::from_secs(600));
        assert_eq!(config.drain_timeout, Duration::from_secs(3));
        Ok(())
    });
}

#[test]
fn bad_values_are_one_clear_line() {
    let cases: &[(&str, &str)] = &[
        ("grpc_addr = \"nowhere\"", "grpc_addr"),
        ("typo_key = 1", "typo_key"),
        ("[lessons]\ndedup_window = \"soon\"", "dedup_window"),
        ("log_format = \"xml\"", "log_format"),
        (
            "grpc_addr = \"127.0.0.1:9\"\nhttp_addr = \"127.0.0.1:9\"",
            "both",
        ),
        (
            "[[auth.tokens]]\nname = \"ops\"\nrole = \"admin\"\ntoken = \"short\"",
            "at least 16",
        ),
        (
            "[[auth.tokens]]\nname = \"ops\"\nrole = \"root\"\ntoken = \"0123456789abcdef\"",
            "role",
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"0123456789abcdef\"\n\
             [[auth.tokens]]\nname = \"a\"\nrole = \"read\"\ntoken = \"fedcba9876543210\"",
            "used twice",
        ),
        ("grpc_addr = \"0.0.0.0:7070\"", "refusing to start"),
        (
            "[processors.usage]\ncadence = \"10ms\"",
            "processors.usage.cadence must be at least 100ms",
        ),
        (
            "[processors.tool_errors]\nquarantine_after_failures = 0",
            "processors.tool_errors.quarantine_after_failures",
        ),
        (
            "[processors]\ntool_error_burst_threshold = 0",
            "tool_error_burst_threshold",
        ),
        ("[processors.usage]\nevery = \"5m\"", "every"),
        ("[storage]\nbusy_timeout = \"0s\"", "storage.busy_timeout"),
        (
            "[webhooks.github]\nsecret = \"s3cret\"\ninsecure = true",
            "not both",
        ),
        (
            "[limits]\nmax_concurrent_calls = 0",
            "limits.max_concurrent_calls must be between 1",
        ),
        ("[limits]\nrequest_timeout = \"soon\"", "request_timeout"),
        (
            "[tls]\ncert_file = \"/no/such/cert.pem\"\nkey_file = \"/no/such/key.pem\"",
            "tls.cert_file /no/such/cert.pem does not exist",
        ),
        ("[tls]\ncert_file = \"/no/such/cert.pem\"", "set together"),
        (
            "database_url = \"mysql://root:pw@db/bosun\"",
            "database_url must be a postgres:// or postgresql:// URL",
        ),
    ];
    for (file, expected) in cases {
        Jail::expect_with(|jail| {
            jail.create_file("bosun.toml", file)?;
            let err = load(jail, Some("bosun.toml"), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{file:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
            Ok(())
        });
    }
}

#[test]
fn tokens_allow_listening_beyond_loopback_and_never_print() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bosun.toml",
            "grpc_addr = \"0.0.0.0:7070\"\n[[auth.tokens]]\nname = \"ops\"\nrole = \"admin\"\ntoken = \"s3cret-s3cret-s3cret\"",
        )?;
        let config = load(jail, Some("bosun.toml"), &Overrides::default()).unwrap();
        assert_eq!(config.auth.tokens[0].role, Role::Admin);
        assert!(!format!("{config:?}").contains("s3cret"));
        Ok(())
    });
}

#[test]
fn the_example_file_documents_every_default() {
    Jail::expect_with(|_jail| {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("bosun.example.toml");
        let config = Config::load(Some(&example), Config::env(), &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        Ok(())
    });
}

#[test]
fn client_variables_are_not_settings_and_typos_still_are_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("BOSUN_ADDR", "https://bosun.internal:7070");
        jail.set_env("BOSUN_TOKEN", "s3cret-s3cret-s3cret");
        jail.set_env("BOSUN_CA_FILE", "/etc/bosun/ca.pem");
        jail.set_env("BOSUN_CLIENT_CERT", "/etc/bosun/me.pem");
        jail.set_env("BOSUN_CLIENT_KEY", "/etc/bosun/me.key");
        jail.set_env("BOSUN_SHIM_UPSTREAM", "http://127.0.0.1:7070");
        let config = load(jail, None, &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        jail.set_env("BOSUN_GRCP_ADDR", "127.0.0.1:1");
        let err = load(jail, None, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("grcp_addr"), "{err}");
        Ok(())
    });
}

#[test]
fn database_url_comes_from_file_env_or_flag_and_is_never_printed() {
    Jail::expect_with(|jail| {
        let url = |config: Config| config.database_url.unwrap().describe();
        jail.create_file(
            "bosun.toml",
            "database_url = \"postgres://bosun:s3cret@file.internal/bosun\"",
        )?;
        let from_file = load(jail, Some("bosun.toml"), &Overrides::default()).unwrap();
        assert!(!format!("{from_file:?}").contains("s3cret"));
        assert!(url(from_file).contains("file.internal"));
        jail.set_env(
            "BOSUN_DATABASE_URL",
            "postgres://bosun:s3cret@env.internal/bosun",
        );
        let from_env = load(jail, Some("bosun.toml"), &Overrides::default()).unwrap();
        assert!(url(from_env).contains("env.internal"));
        let overrides = Overrides {
            database_url: Some("postgresql://flag.internal/bosun".parse().unwrap()),
            ..Overrides::default()
        };
        let from_flag = load(jail, Some("bosun.toml"), &overrides).unwrap();
        assert!(url(from_flag).contains("flag.internal"));
        jail.set_env("BOSUN_DATABASE_URL", "sqlite://bosun:s3cret@nowhere");
        let err = load(jail, None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not sqlite://") && !err.contains("s3cret"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error() {
    Jail::expect_with(|jail| {
        let err = load(jail, Some("bosun.toml"), &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile(_)));
        Ok(())
    });
}

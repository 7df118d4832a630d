//! podrun's own configuration: the config file parses, and which registry credential files
//! exist (the files `podman login` and `docker login` write).

use podrun_config::{Config, Credentials};

use crate::{Check, Host};

pub(crate) fn load(host: &Host) -> Result<Config, String> {
    let paths = &host.paths;
    Config::load(&paths.config_file, paths.config_file_explicit).map_err(|e| e.to_string())
}

pub(crate) fn check_file(host: &Host, config: &Result<Config, String>) -> Check {
    let check = Check::new("config", "configuration file", true);
    let file = host.paths.config_file.display();
    match config {
        Err(message) => check.error(
            format!("{message} (`podrun system config` shows the effective configuration once it parses)"),
            None,
        ),
        Ok(config) if host.paths.config_file.exists() => {
            let registries: Vec<&str> = config.registries.keys().map(String::as_str).collect();
            let registries = if registries.is_empty() {
                "no registry settings".to_string()
            } else {
                format!("settings for {}", registries.join(", "))
            };
            check.ok(format!("{file} parses ({registries})"))
        }
        Ok(_) => check.ok(format!("no file at {file}: the defaults apply")),
    }
}

pub(crate) fn check_credentials(host: &Host) -> Check {
    let check = Check::new("credentials", "registry credentials", true);
    let files = Credentials::files(&host.paths);
    let found: Vec<String> = files
        .iter()
        .filter(|f| f.exists())
        .map(|f| f.display().to_string())
        .collect();
    if found.is_empty() {
        let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return check.ok(format!(
            "no credential file (looked for {}): pulls are anonymous",
            looked.join(", ")
        ));
    }
    match Credentials::load(&host.paths) {
        Ok(credentials) => {
            let hosts = credentials.hosts();
            let hosts = if hosts.is_empty() {
                "no registry".to_string()
            } else {
                hosts.join(", ")
            };
            check.ok(format!("{} (credentials for {hosts})", found.join(", ")))
        }
        Err(e) => check.error(e.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;

    #[test]
    fn config_file_and_credentials() {
        let fake = FakeHost::new();
        let result = check_file(&fake.host, &load(&fake.host));
        assert_eq!(result.status, Status::Ok);
        assert!(result.detail.starts_with("no file at"), "{}", result.detail);

        let config = fake.dir.path().join("home/.config/podrun/config.toml");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(
            &config,
            "[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        let result = check_file(&fake.host, &load(&fake.host));
        assert!(
            result.detail.ends_with("parses (settings for docker.io)"),
            "{}",
            result.detail
        );

        std::fs::write(&config, "[pull]\nretries = \"many\"\n").unwrap();
        let result = check_file(&fake.host, &load(&fake.host));
        assert_eq!(result.status, Status::Error);
        assert!(
            result.detail.contains("config.toml") && result.detail.contains("retries"),
            "{}",
            result.detail
        );

        assert!(check_credentials(&fake.host)
            .detail
            .contains("pulls are anonymous"));
        let docker = fake.dir.path().join("home/.docker/config.json");
        std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
        std::fs::write(&docker, r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#).unwrap();
        let result = check_credentials(&fake.host);
        assert!(
            result.detail.ends_with("(credentials for quay.io)"),
            "{}",
            result.detail
        );
        std::fs::write(&docker, "{").unwrap();
        assert_eq!(check_credentials(&fake.host).status, Status::Error);
    }
}

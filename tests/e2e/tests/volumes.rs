//! Pod volumes besides emptyDir: configMap and secret (from the same file), hostPath, and
//! subPath, played as the ordinary test user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

fn exec(env: &TestEnv, pod: &str, container: &str, script: &str) -> std::process::Output {
    env.podrun(&["exec", pod, "-c", container, "--", "sh", "-c", script])
}

/// Seed scenario "reverse proxy": nginx, configured by a ConfigMap mounted with subPath as
/// /etc/nginx/nginx.conf, proxies port 80 to a web app on 127.0.0.1:5000 in the other
/// container; the web app takes its settings from ConfigMap env and envFrom.
const REVERSE_PROXY: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: mc3-nginx-conf
data:
  greeting: hello-from-configmap
  nginx.conf: |-
    user www-data;
    worker_processes 1;
    error_log /var/log/nginx/error.log warn;
    pid /run/nginx.pid;
    events {
      worker_connections 64;
    }
    http {
      include /etc/nginx/mime.types;
      access_log /var/log/nginx/access.log;
      upstream webapp {
        server 127.0.0.1:5000;
      }
      server {
        listen 80;
        location / {
          proxy_pass http://webapp;
          proxy_redirect off;
        }
      }
    }
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-settings
data:
  MODE: proxied
  LEVEL: debug
---
apiVersion: v1
kind: Pod
metadata:
  name: mc3
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: webapp
    image: busybox
    env:
    - name: GREETING
      valueFrom:
        configMapKeyRef: {name: mc3-nginx-conf, key: greeting}
    envFrom:
    - configMapRef: {name: app-settings}
      prefix: APP_
    command: ["sh", "-c", "mkdir -p /www && echo \"$GREETING $APP_MODE\" > /www/index.html && exec httpd -f -p 127.0.0.1:5000 -h /www"]
  - name: nginx
    image: nginx:1.23
    ports:
    - containerPort: 80
    volumeMounts:
    - name: nginx-proxy-config
      mountPath: /etc/nginx/nginx.conf
      subPath: nginx.conf
  volumes:
  - name: nginx-proxy-config
    configMap:
      name: mc3-nginx-conf
"#;

#[test]
fn nginx_proxies_to_the_web_app_with_a_config_map_sub_path() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "mc3.yaml", REVERSE_PROXY);
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert!(out.contains("2/2"), "{out}");

    // Port 80 is nginx, which only proxies: the answer is the web app's page.
    let page = exec_until_ok(&env, "mc3", "webapp", "wget -q -O - http://127.0.0.1:80/");
    assert_eq!(page.trim(), "hello-from-configmap proxied");
    let access = exec_until_ok(&env, "mc3", "nginx", "cat /var/log/nginx/access.log");
    assert!(
        access.contains("GET / HTTP/1.1"),
        "nginx served it: {access}"
    );

    // The ConfigMap replaced just that file, read-only; the image's other files are there.
    let conf = exec_until_ok(&env, "mc3", "nginx", "cat /etc/nginx/nginx.conf");
    assert!(conf.contains("server 127.0.0.1:5000;"), "{conf}");
    let listing = exec_until_ok(&env, "mc3", "nginx", "ls /etc/nginx");
    assert!(listing.contains("mime.types"), "{listing}");
    let write = exec(&env, "mc3", "nginx", "echo x >> /etc/nginx/nginx.conf");
    assert!(!write.status.success(), "configMap volumes are read-only");
    assert!(String::from_utf8_lossy(&write.stderr).contains("Read-only file system"));

    // env from a ConfigMap key, envFrom with a prefix.
    let env_out = exec_until_ok(&env, "mc3", "webapp", "env");
    for wanted in [
        "GREETING=hello-from-configmap",
        "APP_MODE=proxied",
        "APP_LEVEL=debug",
    ] {
        assert!(
            env_out.lines().any(|l| l == wanted),
            "{wanted} in:\n{env_out}"
        );
    }
    down_and_check(&env, &file, &["mc3"]);
}

const FILE_VOLUMES: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  app.properties: |
    color=blue
  unused: x
binaryData:
  blob.bin: AAEC/w==
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  password: czNjcmV0
stringData:
  username: admin
---
apiVersion: v1
kind: Pod
metadata:
  name: files
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: all-settings, mountPath: /etc/all}
    - {name: some-settings, mountPath: /etc/some}
    - {name: creds, mountPath: /etc/creds}
    - {name: maybe, mountPath: /etc/maybe}
  volumes:
  - name: all-settings
    configMap:
      name: settings
  - name: some-settings
    configMap:
      name: settings
      defaultMode: 0600
      items:
      - {key: app.properties, path: conf/app.properties}
      - {key: blob.bin, path: blob.bin, mode: 0444}
  - name: creds
    secret:
      secretName: creds
      defaultMode: 256
  - name: maybe
    configMap:
      name: not-in-the-file
      optional: true
"#;

#[test]
fn config_map_and_secret_volumes_with_items_and_modes() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "files.yaml", FILE_VOLUMES);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());

    let stat = |path: &str| {
        exec_until_ok(&env, "files", "c", &format!("stat -c '%a %u:%g' {path}"))
            .trim()
            .to_string()
    };
    let cat = |path: &str| exec_until_ok(&env, "files", "c", &format!("cat {path}"));
    // Every key, with the default mode 0644, owned by root.
    assert_eq!(cat("/etc/all/app.properties"), "color=blue\n");
    assert_eq!(stat("/etc/all/app.properties"), "644 0:0");
    assert_eq!(cat("/etc/all/unused"), "x");
    let blob = exec_until_ok(&env, "files", "c", "od -An -tx1 /etc/all/blob.bin");
    assert_eq!(
        blob.split_whitespace().collect::<Vec<_>>(),
        ["00", "01", "02", "ff"]
    );
    // items: only those keys, at their paths, with the item's mode or defaultMode (0600,
    // written the way Kubernetes manifests write it: a YAML octal).
    let some = exec_until_ok(&env, "files", "c", "find /etc/some -type f | sort");
    assert_eq!(some, "/etc/some/blob.bin\n/etc/some/conf/app.properties\n");
    assert_eq!(stat("/etc/some/conf/app.properties"), "600 0:0");
    assert_eq!(stat("/etc/some/blob.bin"), "444 0:0");
    // A Secret: data (base64) and stringData, defaultMode 256 (0400).
    assert_eq!(cat("/etc/creds/password"), "s3cret");
    assert_eq!(cat("/etc/creds/username"), "admin");
    assert_eq!(stat("/etc/creds/password"), "400 0:0");
    // A missing optional ConfigMap: an empty volume.
    assert_eq!(
        exec_until_ok(&env, "files", "c", "ls -A /etc/maybe | wc -l").trim(),
        "0"
    );
    // Read-only, like the kubelet mounts them.
    assert!(!exec(&env, "files", "c", "touch /etc/all/new")
        .status
        .success());
    assert!(!exec(&env, "files", "c", "rm /etc/creds/password")
        .status
        .success());

    // The secret's files live in the runtime directory (a tmpfs under XDG_RUNTIME_DIR), not
    // in the data directory on disk.
    assert!(runtime_dir(&env, "files")
        .join("volumes/creds/password")
        .is_file());
    assert!(!data_dir(&env, "files").join("volumes/creds").exists());
    down_and_check(&env, &file, &["files"]);
}

#[test]
fn host_path_volumes_share_host_files_and_outlive_the_pod() {
    let env = TestEnv::new();
    let host = env.home().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host.txt"), "host data\n").unwrap();
    std::os::unix::fs::symlink("/etc", host.join("escape")).unwrap();
    let user = podrun_e2e::test_user();
    std::process::Command::new("chown")
        .args(["-hR", &format!("{}:{}", user.uid, user.gid)])
        .arg(&host)
        .status()
        .unwrap();
    let created_dir = env.home().join("made/by/podrun");
    let created_file = env.home().join("made-file.log");
    std::fs::create_dir_all(env.home().join("made")).unwrap();
    std::process::Command::new("chown")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(env.home().join("made"))
        .status()
        .unwrap();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hostpaths
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "cat /host/from-host.txt > /host/seen.txt && echo written > /created/in-dir && echo logged >> /log/file.log && exec sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /host}}
    - {{name: shared, mountPath: /sub, subPath: deeper/dir}}
    - {{name: made, mountPath: /created}}
    - {{name: logfile, mountPath: /log/file.log}}
  volumes:
  - name: shared
    hostPath: {{path: {host}, type: Directory}}
  - name: made
    hostPath: {{path: {created_dir}, type: DirectoryOrCreate}}
  - name: logfile
    hostPath: {{path: {created_file}, type: FileOrCreate}}
"#,
        host = host.display(),
        created_dir = created_dir.display(),
        created_file = created_file.display(),
    );
    let file = write_manifest(&env, "hostpaths.yaml", &yaml);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    exec_until_ok(&env, "hostpaths", "c", "test -s /log/file.log");

    // The container's writes land on the host, owned by the user who ran podrun (root in
    // the pod is that user).
    let seen = host.join("seen.txt");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "host data\n");
    assert_eq!(std::fs::metadata(&seen).unwrap().uid(), user.uid.as_raw());
    assert_eq!(
        std::fs::read_to_string(created_dir.join("in-dir")).unwrap(),
        "written\n"
    );
    assert_eq!(std::fs::read_to_string(&created_file).unwrap(), "logged\n");
    // A missing subPath is created inside the volume (0755 on the host, not world-writable).
    let sub = host.join("deeper/dir");
    assert!(sub.is_dir());
    assert_eq!(
        std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        exec_until_ok(&env, "hostpaths", "c", "cat /host/from-host.txt"),
        "host data\n"
    );

    down_and_check(&env, &file, &["hostpaths"]);
    // hostPath volumes are the host's: `down` keeps them.
    assert!(seen.is_file() && created_dir.join("in-dir").is_file() && created_file.is_file());

    // A subPath that leads out of its volume through a symlink is refused at start, and the
    // failed play leaves nothing behind.
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: escape
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: shared, mountPath: /stolen, subPath: escape}}
  volumes:
  - name: shared
    hostPath: {{path: {host}}}
"#,
        host = host.display()
    );
    let file = write_manifest(&env, "escape.yaml", &yaml);
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("container `c`") && err.contains("subPath `escape`: leads outside the volume"),
        "{err}"
    );
    assert!(!runtime_dir(&env, "escape").exists());
    assert!(!data_dir(&env, "escape").exists());
}

#[test]
fn bad_volume_sources_fail_before_anything_starts() {
    let env = TestEnv::new();
    let cases = [
        (
            "hostPath:\n      path: relative/dir",
            "spec.volumes[0].hostPath: path `relative/dir` must be absolute",
        ),
        (
            "hostPath:\n      path: /etc/hostname\n      type: Directory",
            "spec.volumes[0].hostPath: `/etc/hostname` is not a Directory",
        ),
        (
            "hostPath:\n      path: /nonexistent-podrun/f\n      type: FileOrCreate",
            "the directory of `/nonexistent-podrun/f` does not exist",
        ),
        (
            "configMap:\n      name: cm\n      defaultMode: 0644\n      items:\n      - {key: missing, path: x}",
            "spec.volumes[0].configMap.items[0].key",
        ),
    ];
    for (i, (source, wanted)) in cases.iter().enumerate() {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{a: b}}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  containers:\n  \
             - {{name: c, image: busybox, volumeMounts: [{{name: v, mountPath: /v}}]}}\n  \
             volumes:\n  - name: v\n    {source}\n"
        );
        let file = write_manifest(&env, &format!("bad{i}.yaml"), &yaml);
        let err = env.podrun_err(&["play", &file]);
        assert!(err.contains(wanted), "case {i}: want {wanted:?} in:\n{err}");
        assert!(err.contains(&file), "case {i}: the file is named: {err}");
        assert!(!runtime_dir(&env, "bad").exists());
        assert!(!data_dir(&env, "bad").exists());
    }
}

/// `emptyDir.mode` sets the permission bits of the volume's directory (on disk, or a tmpfs
/// with `medium: Memory`); without it an emptyDir is 0777 and a memory one 1777. A mode the
/// API server would refuse fails the play with the field's name.
#[test]
fn empty_dir_mode_sets_the_directory_s_permissions() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "modes.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: modes\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '1000']\n    volumeMounts:\n    - {name: plain, mountPath: /plain}\n    - {name: private, mountPath: /private}\n    - {name: mem, mountPath: /mem}\n    - {name: memdefault, mountPath: /memdefault}\n  volumes:\n  - {name: plain, emptyDir: {}}\n  - {name: private, emptyDir: {mode: 0750}}\n  - {name: mem, emptyDir: {medium: Memory, mode: 0700}}\n  - {name: memdefault, emptyDir: {medium: Memory}}\n",
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let mode = |path: &str| {
        exec_until_ok(&env, "modes", "c", &format!("stat -c %a {path}"))
            .trim()
            .to_string()
    };
    assert_eq!(mode("/plain"), "777");
    assert_eq!(mode("/private"), "750");
    assert_eq!(mode("/mem"), "700");
    assert_eq!(mode("/memdefault"), "1777");
    let on_host = std::fs::metadata(data_dir(&env, "modes").join("volumes/private")).unwrap();
    assert_eq!(on_host.permissions().mode() & 0o7777, 0o750);
    down_and_check(&env, &file, &["modes"]);

    let bad = write_manifest(
        &env,
        "badmode.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: badmode\nspec:\n  containers:\n  - name: c\n    image: busybox\n  volumes:\n  - {name: v, emptyDir: {mode: 04755}}\n",
    );
    let out = env.podrun(&["play", &bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.volumes[0].emptyDir.mode") && stderr.contains("01777"),
        "{stderr}"
    );
    assert_nothing_left(&env);
}

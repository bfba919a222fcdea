//! The Docker engine and the containers the run starts on it, through the
//! docker CLI, for every service: the run's shared servers and a test's
//! own. One mechanism, so that what is found, started, labelled for the
//! reaper and removed is decided in one place.
//!
//! The engine is the one the CLI would use: `DOCKER_HOST`, else the
//! current Docker context (`DOCKER_CONTEXT`, else `currentContext` in the
//! CLI's config.json), else the usual sockets: Docker's own
//! (/var/run/docker.sock), rootless Docker's and Podman's (under
//! `XDG_RUNTIME_DIR`, and Podman's system socket). A socket the CLI would
//! not look at by itself is handed to it as `DOCKER_HOST`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::infra::{InfraError, reaper};

/// Where the engine listens, and how that was found (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376`, `ssh://...`.
    pub(crate) host: String,
    /// `DOCKER_HOST`, `context ci`, `rootless Docker's socket`, ...
    pub(crate) found_by: String,
    /// A socket the CLI does not look at by itself: passed as DOCKER_HOST.
    pub(crate) hand_to_cli: bool,
}

impl Endpoint {
    /// The host containers' published ports are reached on: the engine's
    /// machine for a TCP or SSH engine, else this one.
    pub(crate) fn published_host(&self) -> String {
        let remote = self
            .host
            .strip_prefix("tcp://")
            .or_else(|| self.host.strip_prefix("ssh://"));
        match remote {
            Some(rest) => {
                let authority = rest.split('/').next().unwrap_or(rest);
                let authority = authority.rsplit('@').next().unwrap_or(authority);
                let host = match authority.rsplit_once(':') {
                    Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
                    _ => authority,
                };
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            }
            None => "127.0.0.1".to_owned(),
        }
    }
}

/// What discovery reads of the machine: variables, files, sockets. The
/// unit tests give it a made-up machine.
pub(crate) trait Machine {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> Option<String>;
    fn dirs(&self, dir: &Path) -> Vec<PathBuf>;
    fn is_socket(&self, path: &Path) -> bool;
    fn uid(&self) -> u32;
}

/// This machine.
pub(crate) struct ThisMachine;

impl Machine for ThisMachine {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }

    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn dirs(&self, dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_socket(&self, path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
    }

    fn uid(&self) -> u32 {
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }
    }
}

/// The engine the docker CLI would talk to, or why there is none (what
/// was tried, and what to do).
pub(crate) fn discover(machine: &impl Machine) -> Result<Endpoint, String> {
    if let Some(host) = machine.var("DOCKER_HOST") {
        return Ok(Endpoint {
            host,
            found_by: "DOCKER_HOST".to_owned(),
            hand_to_cli: false,
        });
    }
    if let Some(endpoint) = from_context(machine)? {
        return Ok(endpoint);
    }
    let runtime_dir = machine
        .var("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", machine.uid())));
    let sockets = [
        (
            PathBuf::from("/var/run/docker.sock"),
            "Docker's socket",
            false,
        ),
        (
            runtime_dir.join("docker.sock"),
            "rootless Docker's socket",
            true,
        ),
        (
            runtime_dir.join("podman/podman.sock"),
            "Podman's socket",
            true,
        ),
        (
            PathBuf::from("/run/podman/podman.sock"),
            "Podman's system socket",
            true,
        ),
    ];
    for (socket, what, hand_to_cli) in &sockets {
        if machine.is_socket(socket) {
            return Ok(Endpoint {
                host: format!("unix://{}", socket.display()),
                found_by: (*what).to_owned(),
                hand_to_cli: *hand_to_cli,
            });
        }
    }
    let tried: Vec<String> = sockets
        .iter()
        .map(|(socket, _, _)| socket.display().to_string())
        .collect();
    Err(format!(
        "DOCKER_HOST is unset, the Docker context is the default one, and there is no engine socket at {}",
        tried.join(", ")
    ))
}

/// The endpoint of the current context, unless it is `default` (then the
/// sockets decide, as the CLI's own default does).
fn from_context(machine: &impl Machine) -> Result<Option<Endpoint>, String> {
    let config_dir = machine.var("DOCKER_CONFIG").map(PathBuf::from).or_else(|| {
        machine
            .var("HOME")
            .map(|home| Path::new(&home).join(".docker"))
    });
    let Some(config_dir) = config_dir else {
        return Ok(None);
    };
    let (name, said_by) = match machine.var("DOCKER_CONTEXT") {
        Some(name) => (name, "DOCKER_CONTEXT".to_owned()),
        None => {
            let config = config_dir.join("config.json");
            let current = machine
                .read(&config)
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|json| json.get("currentContext")?.as_str().map(str::to_owned));
            match current {
                Some(name) => (name, config.display().to_string()),
                None => return Ok(None),
            }
        }
    };
    if name.is_empty() || name == "default" {
        return Ok(None);
    }
    // The CLI keeps each context in contexts/meta/<sha256 of its name>/;
    // reading every meta.json for the name spares a hash.
    for dir in machine.dirs(&config_dir.join("contexts/meta")) {
        let Some(meta) = machine
            .read(&dir.join("meta.json"))
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        else {
            continue;
        };
        if meta.get("Name").and_then(|n| n.as_str()) != Some(name.as_str()) {
            continue;
        }
        let host = meta
            .pointer("/Endpoints/docker/Host")
            .and_then(|host| host.as_str())
            .ok_or_else(|| format!("the Docker context `{name}` names no engine host"))?;
        return Ok(Some(Endpoint {
            host: host.to_owned(),
            found_by: format!("the Docker context `{name}`"),
            hand_to_cli: false,
        }));
    }
    Err(format!(
        "the Docker context `{name}` ({said_by}) is not in {}; `docker context use default`, or create it",
        config_dir.join("contexts").display()
    ))
}

/// The engine of this machine, found once per process.
fn endpoint() -> Result<&'static Endpoint, String> {
    static FOUND: std::sync::OnceLock<Result<Endpoint, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| discover(&ThisMachine))
        .as_ref()
        .map_err(Clone::clone)
}

/// `docker ARGS` against the discovered engine.
pub(crate) fn cli(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("docker");
    command.args(args).stdin(Stdio::null());
    if let Ok(endpoint) = endpoint()
        && endpoint.hand_to_cli
    {
        command.env("DOCKER_HOST", &endpoint.host);
    }
    command
}

/// Runs `docker ARGS` to its end, off the runtime's workers.
async fn run(args: &[&str]) -> Result<std::process::Output, InfraError> {
    let mut command = tokio::process::Command::from(cli(args));
    command
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| InfraError::new(format!("cannot run the docker CLI: {error}")))
}

/// Runs `docker ARGS`; a failure is an error naming the action.
async fn checked(action: &str, args: &[&str]) -> Result<std::process::Output, InfraError> {
    let output = run(args).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(InfraError::new(format!(
            "docker {action} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Whether a Docker engine answers, and if not, why not (for messages).
pub fn engine() -> Result<(), String> {
    let endpoint = endpoint()?;
    let output = cli(&["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|error| format!("{}: cannot run the docker CLI ({error})", endpoint.host))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}): {}",
            endpoint.host,
            endpoint.found_by,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Whether `name:tag` exists locally (then starting it pulls nothing).
pub fn image_present(name: &str, tag: &str) -> bool {
    cli(&["image", "inspect", &format!("{name}:{tag}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `docker unpause` (a paused container cannot always be removed), then
/// `docker rm -f -v`, waiting for both; synchronous, for Drop and exit
/// hooks. Whether the container is gone.
pub(crate) fn remove(id: &str) -> bool {
    let quiet = |args: &[&str]| {
        cli(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    quiet(&["unpause", id]);
    quiet(&["rm", "--force", "--volumes", id])
}

/// The output of a `docker` command that succeeded, for the reaper's
/// listings.
pub(crate) fn listing(args: &[&str]) -> Option<String> {
    cli(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What to run: an image, its environment and command, the port to
/// publish, and the label that says which run it serves.
#[derive(Debug)]
pub(crate) struct Spec<'a> {
    pub(crate) image: String,
    /// `verily.pid` for a run's server, `verily.exclusive.pid` for a
    /// test's own (see the reaper).
    pub(crate) pid_label: &'a str,
    pub(crate) env: Vec<String>,
    /// The port the server listens on inside the container.
    pub(crate) port: u16,
    /// A host port chosen by the caller, so that a container stopped and
    /// started again keeps its address; `None`: one the engine picks.
    pub(crate) host_port: Option<u16>,
    pub(crate) command: Vec<String>,
}

/// A container the run started: removed (with its volumes) when dropped,
/// unless kept.
pub(crate) struct Container {
    id: String,
    image: String,
    host: String,
    port: u16,
    paused: AtomicBool,
    /// Removed already, or kept: dropping it leaves it alone.
    let_go: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.short_id())
            .field("image", &self.image)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Container {
    /// `docker run --detach` with the run's labels; on a fixed host port,
    /// another port when that one was taken meanwhile. Not yet ready: the
    /// service waits for its own sign of life.
    pub(crate) async fn run(spec: &Spec<'_>) -> Result<Self, InfraError> {
        reaper::sweep_containers_once();
        let endpoint = endpoint().map_err(InfraError::new)?;
        let local = endpoint.published_host() == "127.0.0.1";
        let mut attempts = 0;
        loop {
            let host_port = match spec.host_port {
                Some(_) if attempts > 0 => Some(crate::infra::process::free_port()?),
                fixed => fixed,
            };
            let publish = match (local, host_port) {
                (true, Some(port)) => format!("127.0.0.1:{port}:{}", spec.port),
                (true, None) => format!("127.0.0.1::{}", spec.port),
                (false, Some(port)) => format!("{port}:{}", spec.port),
                (false, None) => spec.port.to_string(),
            };
            let pid_label = format!("{}={}", spec.pid_label, std::process::id());
            let owner_label = format!("{}={}", reaper::OWNER_LABEL, reaper::owner_tag());
            let mut args = vec![
                "run",
                "--detach",
                "--label",
                &pid_label,
                "--label",
                &owner_label,
                "--publish",
                &publish,
            ];
            for variable in &spec.env {
                args.extend(["--env", variable]);
            }
            args.push(&spec.image);
            args.extend(spec.command.iter().map(String::as_str));
            let output = run(&args).await?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
                // The port was taken between choosing and publishing it.
                if host_port.is_some() && stderr.contains("address already in use") && attempts < 3
                {
                    attempts += 1;
                    continue;
                }
                return Err(InfraError::new(format!(
                    "cannot start a container of {}: {stderr}",
                    spec.image
                )));
            }
            let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let mut container = Container {
                id,
                image: spec.image.clone(),
                host: endpoint.published_host(),
                port: host_port.unwrap_or_default(),
                paused: AtomicBool::new(false),
                let_go: false,
            };
            if host_port.is_none() {
                container.port = container.published_port(spec.port).await?;
            }
            return Ok(container);
        }
    }

    /// The host port the engine gave `port`.
    async fn published_port(&self, port: u16) -> Result<u16, InfraError> {
        let output = checked("port", &["port", &self.id, &format!("{port}/tcp")]).await?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.trim().rsplit_once(':')?.1.parse().ok())
            .ok_or_else(|| {
                InfraError::new(format!(
                    "docker port {} {port}: no host port in `{}`",
                    self.short_id(),
                    text.trim()
                ))
            })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    pub(crate) fn image(&self) -> &str {
        &self.image
    }

    /// The host to reach published ports on.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The host port of the server.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// One line for the start report: `docker container (IMAGE, HOST:PORT)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "docker container ({}, {}:{})",
            self.image, self.host, self.port
        )
    }

    /// Whether the container runs.
    pub(crate) async fn running(&self) -> bool {
        run(&["inspect", "--format", "{{.State.Running}}", &self.id])
            .await
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "true")
    }

    /// Its last 20 lines of output, for a message.
    pub(crate) async fn logs(&self) -> String {
        match run(&["logs", "--tail", "20", &self.id]).await {
            Ok(output) => format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => error.to_string(),
        }
    }

    /// `docker stop` (resumed first): the image's entrypoint gets
    /// `grace` to shut the server down cleanly.
    pub(crate) async fn stop(&self, grace: Duration) -> Result<(), InfraError> {
        self.resume().await?;
        let grace = grace.as_secs().to_string();
        checked("stop", &["stop", "--time", &grace, &self.id])
            .await
            .map(drop)
    }

    /// `docker start` of a stopped container; ready when the caller says.
    pub(crate) async fn start(&self) -> Result<(), InfraError> {
        if self.running().await {
            return Ok(());
        }
        checked("start", &["start", &self.id]).await.map(drop)
    }

    /// `docker pause`: every process of the container is frozen.
    pub(crate) async fn pause(&self) -> Result<(), InfraError> {
        if self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        checked("pause", &["pause", &self.id]).await?;
        self.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// `docker unpause` after [`Self::pause`].
    pub(crate) async fn resume(&self) -> Result<(), InfraError> {
        if !self.paused.load(Ordering::SeqCst) {
            return Ok(());
        }
        checked("unpause", &["unpause", &self.id]).await?;
        self.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Leaves the container running past the run (`VERILY_KEEP=1`): not
    /// removed on drop; its id, to say how to remove it.
    pub(crate) fn keep(&mut self) -> &str {
        self.let_go = true;
        &self.id
    }

    /// Removes the container now, paused or not, and waits for it to be
    /// gone; synchronous, so it works from `Drop` on any thread.
    pub(crate) fn remove(&mut self) {
        if !self.let_go {
            self.let_go = true;
            remove(&self.id);
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::{Endpoint, Machine, discover};

    /// A made-up machine: variables, files and sockets.
    #[derive(Default)]
    struct Fake {
        vars: BTreeMap<&'static str, String>,
        files: BTreeMap<PathBuf, String>,
        sockets: Vec<PathBuf>,
    }

    impl Machine for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }

        fn read(&self, path: &Path) -> Option<String> {
            self.files.get(path).cloned()
        }

        fn dirs(&self, dir: &Path) -> Vec<PathBuf> {
            let mut dirs: Vec<PathBuf> = self
                .files
                .keys()
                .filter_map(|file| {
                    let parent = file.parent()?;
                    (parent.parent()? == dir).then(|| parent.to_path_buf())
                })
                .collect();
            dirs.dedup();
            dirs
        }

        fn is_socket(&self, path: &Path) -> bool {
            self.sockets.iter().any(|socket| socket == path)
        }

        fn uid(&self) -> u32 {
            1000
        }
    }

    fn home() -> Fake {
        let mut fake = Fake::default();
        fake.vars.insert("HOME", "/home/dev".to_owned());
        fake.vars
            .insert("XDG_RUNTIME_DIR", "/run/user/1000".to_owned());
        fake
    }

    fn with_context(fake: &mut Fake, name: &str, host: &str) {
        fake.files.insert(
            PathBuf::from(format!("/home/dev/.docker/contexts/meta/{name}-hash/meta.json")),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        );
    }

    #[test]
    fn docker_host_comes_first() {
        let mut fake = home();
        fake.vars
            .insert("DOCKER_HOST", "tcp://build-box:2375".to_owned());
        fake.sockets.push(PathBuf::from("/var/run/docker.sock"));
        let endpoint = discover(&fake).unwrap();
        assert_eq!(endpoint.host, "tcp://build-box:2375");
        assert_eq!(endpoint.found_by, "DOCKER_HOST");
        assert!(!endpoint.hand_to_cli);
        assert_eq!(endpoint.published_host(), "build-box");
    }

    #[test]
    fn the_current_context_of_the_cli_config_is_followed() {
        let mut fake = home();
        fake.files.insert(
            PathBuf::from("/home/dev/.docker/config.json"),
            r#"{"auths":{},"currentContext":"colima"}"#.to_owned(),
        );
        with_context(&mut fake, "other", "unix:///other.sock");
        with_context(&mut fake, "colima", "unix:///home/dev/.colima/docker.sock");
        fake.sockets.push(PathBuf::from("/var/run/docker.sock"));
        let endpoint = discover(&fake).unwrap();
        assert_eq!(endpoint.host, "unix:///home/dev/.colima/docker.sock");
        assert_eq!(endpoint.found_by, "the Docker context `colima`");
        // The CLI follows its context itself.
        assert!(!endpoint.hand_to_cli);
        assert_eq!(endpoint.published_host(), "127.0.0.1");

        // DOCKER_CONTEXT overrides the config; `default` means the sockets.
        fake.vars.insert("DOCKER_CONTEXT", "default".to_owned());
        assert_eq!(discover(&fake).unwrap().host, "unix:///var/run/docker.sock");
    }

    #[test]
    fn a_context_that_is_not_there_says_what_to_do() {
        let mut fake = home();
        fake.vars.insert("DOCKER_CONTEXT", "gone".to_owned());
        fake.sockets.push(PathBuf::from("/var/run/docker.sock"));
        assert_eq!(
            discover(&fake).unwrap_err(),
            "the Docker context `gone` (DOCKER_CONTEXT) is not in /home/dev/.docker/contexts; `docker context use default`, or create it"
        );
    }

    #[test]
    fn rootless_docker_and_podman_sockets_are_found_and_handed_to_the_cli() {
        let mut fake = home();
        fake.sockets
            .push(PathBuf::from("/run/user/1000/podman/podman.sock"));
        let podman = discover(&fake).unwrap();
        assert_eq!(
            podman,
            Endpoint {
                host: "unix:///run/user/1000/podman/podman.sock".to_owned(),
                found_by: "Podman's socket".to_owned(),
                hand_to_cli: true,
            }
        );
        // Rootless Docker's socket comes before Podman's.
        fake.sockets
            .push(PathBuf::from("/run/user/1000/docker.sock"));
        let rootless = discover(&fake).unwrap();
        assert_eq!(rootless.host, "unix:///run/user/1000/docker.sock");
        assert_eq!(rootless.found_by, "rootless Docker's socket");
        assert!(rootless.hand_to_cli);
        // Docker's own socket comes first, and the CLI finds it itself.
        fake.sockets.push(PathBuf::from("/var/run/docker.sock"));
        let system = discover(&fake).unwrap();
        assert_eq!(system.host, "unix:///var/run/docker.sock");
        assert!(!system.hand_to_cli);
    }

    #[test]
    fn no_engine_names_every_place_looked_at() {
        let mut fake = home();
        fake.vars.remove("XDG_RUNTIME_DIR");
        assert_eq!(
            discover(&fake).unwrap_err(),
            "DOCKER_HOST is unset, the Docker context is the default one, and there is no engine socket at /var/run/docker.sock, /run/user/1000/docker.sock, /run/user/1000/podman/podman.sock, /run/podman/podman.sock"
        );
    }

    #[test]
    fn published_ports_of_a_remote_engine_are_on_its_host() {
        let endpoint = |host: &str| Endpoint {
            host: host.to_owned(),
            found_by: String::new(),
            hand_to_cli: false,
        };
        assert_eq!(
            endpoint("ssh://dev@builder.internal").published_host(),
            "builder.internal"
        );
        assert_eq!(endpoint("tcp://10.0.0.5:2376").published_host(), "10.0.0.5");
        assert_eq!(
            endpoint("unix:///var/run/docker.sock").published_host(),
            "127.0.0.1"
        );
    }
}

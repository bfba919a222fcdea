//! The Docker engine: whether one answers (and if not, why not, for
//! messages) and which images it has.

use std::path::Path;
use std::process::Command;

/// Whether a Docker engine answers, and if not, why not (for messages).
pub fn engine() -> Result<(), String> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        return probe().map_err(|error| format!("DOCKER_HOST={host}: {error}"));
    }
    let socket = Path::new("/var/run/docker.sock");
    if !socket.exists() {
        return Err("/var/run/docker.sock: not found".to_owned());
    }
    probe().map_err(|error| format!("/var/run/docker.sock: {error}"))
}

fn probe() -> Result<(), String> {
    let output = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|error| format!("cannot run the docker CLI ({error})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Whether `name:tag` exists locally (then starting it pulls nothing).
pub fn image_present(name: &str, tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", &format!("{name}:{tag}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

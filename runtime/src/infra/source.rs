//! Where a server comes from, for every service: a URL to someone else's
//! server, a container, or the machine's own binaries. A variable
//! (`VERILY_POSTGRES`, `VERILY_REDIS`) may force one, and a forced source
//! that is unavailable is an error, never a silent fallback; otherwise
//! the first available one is chosen, and when none is, one message says
//! what was tried and what to do.

use crate::infra::InfraError;

pub use crate::env::Source;

impl Source {
    /// The source `variable` (`VERILY_POSTGRES`, `VERILY_REDIS`) forces, if
    /// it is set (a value that is not a source stops the run before it
    /// starts: see `env.rs`).
    pub(crate) fn forced(variable: &str) -> Result<Option<Source>, InfraError> {
        let env = crate::env::env();
        match variable {
            "VERILY_POSTGRES" => Ok(env.postgres_source),
            "VERILY_REDIS" => Ok(env.redis_source),
            other => Err(InfraError::new(format!(
                "{other} is not a variable that forces a source"
            ))),
        }
    }
}

/// The source chosen when none is forced and there is no URL, with what
/// was found on the way (`B`: the local binaries), so it is not asked again.
pub(crate) enum Chosen<B> {
    /// The engine answered.
    Docker,
    Local(B),
}

impl<B> Chosen<B> {
    pub(crate) fn source(&self) -> Source {
        match self {
            Chosen::Docker => Source::Docker,
            Chosen::Local(_) => Source::Local,
        }
    }
}

/// Docker when an engine answers and the image is here (or there are no
/// local binaries to fall back on, so pulling is worth it); else local
/// binaries; else `Err(why Docker is not usable)`, for the service's
/// message naming the three ways.
pub(crate) fn choose<B>(binaries: Option<B>, image: (String, String)) -> Result<Chosen<B>, String> {
    let docker = docker_status(image);
    match (docker, binaries) {
        (Ok(true), _) | (Ok(false), None) => Ok(Chosen::Docker),
        (_, Some(binaries)) => Ok(Chosen::Local(binaries)),
        (Err(why), None) => Err(why),
    }
}

/// `Ok(image present)` when an engine answers, `Err(why not)` otherwise.
#[cfg(feature = "docker")]
pub(crate) fn docker_status((name, tag): (String, String)) -> Result<bool, String> {
    crate::infra::docker::engine()?;
    Ok(crate::infra::docker::image_present(&name, &tag))
}

#[cfg(not(feature = "docker"))]
pub(crate) fn docker_status(_image: (String, String)) -> Result<bool, String> {
    Err(WITHOUT_DOCKER.to_owned())
}

/// Why Docker is never usable in this build.
#[cfg(not(feature = "docker"))]
pub(crate) const WITHOUT_DOCKER: &str = "verily was built without its `docker` feature";

/// For a source that asks for Docker: the engine answers, or an error
/// that says why not and what to use instead (`others`).
#[cfg(feature = "docker")]
pub(crate) fn docker_asked_for(
    service: &str,
    _variable: &str,
    others: &str,
) -> Result<(), InfraError> {
    crate::infra::docker::engine().map_err(|why| {
        InfraError::new(format!(
            "{service} from Docker was asked for, but Docker is not reachable ({why}); start Docker, or use {others}"
        ))
    })
}

#[cfg(not(feature = "docker"))]
pub(crate) fn docker_asked_for(
    _service: &str,
    variable: &str,
    others: &str,
) -> Result<(), InfraError> {
    Err(InfraError::new(format!(
        "{variable}=docker, but {WITHOUT_DOCKER}; enable it, or use {others}"
    )))
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redacted("postgres://db/app"), "postgres://db/app");
    }
}

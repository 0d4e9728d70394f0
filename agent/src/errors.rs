//! Errors as ironic-python-agent reports them: inside a command result as
//! `{type, code, message, details}`, and as HTTP error bodies
//! `{faultcode, faultstring}`.

use ferrite_imaging::ImagingError;
use serde::Serialize;
use serde_json::{json, Value};

/// One agent error in IPA's serialized form. `kind` is the upstream class
/// name (`CommandExecutionError`, `DeploymentError`…); the conductor shows
/// `details` (or `message` when `details` is empty) as the node's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: u16,
    pub message: String,
    pub details: String,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message, self.details)
    }
}

impl CommandError {
    pub fn new(kind: &str, code: u16, message: &str, details: impl Into<String>) -> CommandError {
        CommandError {
            kind: kind.to_string(),
            code,
            message: message.to_string(),
            details: details.into(),
        }
    }

    /// A command failed for a reason without a more specific class.
    pub fn execution(details: impl Into<String>) -> CommandError {
        CommandError::new(
            "CommandExecutionError",
            500,
            "Command execution failed",
            details,
        )
    }

    pub fn invalid_params(details: impl Into<String>) -> CommandError {
        CommandError::new(
            "InvalidCommandParamsError",
            400,
            "Invalid command parameters",
            details,
        )
    }

    pub fn invalid_command(details: impl Into<String>) -> CommandError {
        CommandError::new("InvalidCommandError", 400, "Invalid command", details)
    }

    pub fn not_found(what: &str, id: &str) -> CommandError {
        CommandError::new(
            "RequestedObjectNotFoundError",
            404,
            "Not found",
            format!("{what} with id {id} not found."),
        )
    }

    pub fn busy(running: &str) -> CommandError {
        CommandError::new(
            "AgentIsBusy",
            409,
            "Agent is busy",
            format!("executing command {running}"),
        )
    }

    pub fn method_not_found(method: &str) -> CommandError {
        CommandError::new(
            "HardwareManagerMethodNotFound",
            500,
            "No HardwareManager found to handle method",
            format!("Could not find method: {method}"),
        )
    }

    pub fn version_mismatch(agent: &Value, ironic: &Value) -> CommandError {
        CommandError::new(
            "VersionMismatch",
            409,
            "Hardware managers version mismatch, reload agent with correct version",
            format!("Current versions: {agent}, versions used by ironic: {ironic}"),
        )
    }

    pub fn erase(details: impl Into<String>) -> CommandError {
        CommandError::new(
            "BlockDeviceEraseError",
            500,
            "Error erasing block device",
            details,
        )
    }

    /// Errors a caller must fix in its request: IPA answers them with an
    /// HTTP error instead of recording a failed command.
    pub fn is_invalid_content(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "InvalidContentError" | "InvalidCommandError" | "InvalidCommandParamsError"
        )
    }

    pub fn is_version_mismatch(&self) -> bool {
        self.kind == "VersionMismatch"
    }

    /// The HTTP error body IPA renders for this error.
    pub fn fault(&self) -> Value {
        fault(self.code, &self.to_string())
    }
}

/// `{faultcode, faultstring}` as IPA's API renders errors.
pub fn fault(code: u16, faultstring: &str) -> Value {
    json!({
        "faultcode": if code >= 500 { "Server" } else { "Client" },
        "faultstring": faultstring,
    })
}

/// An imaging failure as the IPA error class the same failure raises
/// upstream.
pub fn from_imaging(err: &ImagingError) -> CommandError {
    let details = err.to_string();
    match err {
        ImagingError::Invalid(_) => CommandError::invalid_params(details),
        ImagingError::NoDisk(_) => CommandError::new(
            "DeviceNotFound",
            404,
            "Error finding the disk or partition device to deploy the image onto",
            details,
        ),
        ImagingError::Download(_) => CommandError::new(
            "ImageDownloadError",
            500,
            "Error downloading image",
            details,
        ),
        ImagingError::Checksum(_) => CommandError::new(
            "ImageChecksumError",
            500,
            "Error verifying image checksum",
            details,
        ),
        ImagingError::TooSmall(_) | ImagingError::Tool(_) | ImagingError::Io(_) => {
            CommandError::new(
                "ImageWriteError",
                500,
                "Error writing image to device",
                details,
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_ipa() {
        let err = CommandError::busy("execute_deploy_step");
        let value = serde_json::to_value(&err).unwrap();
        assert_eq!(
            value,
            json!({"type": "AgentIsBusy", "code": 409, "message": "Agent is busy",
                   "details": "executing command execute_deploy_step"})
        );
        assert_eq!(
            err.fault(),
            json!({"faultcode": "Client",
                   "faultstring": "Agent is busy: executing command execute_deploy_step"})
        );
        assert_eq!(
            CommandError::execution("boom").fault()["faultcode"],
            json!("Server")
        );
    }

    #[test]
    fn imaging_errors_map_to_upstream_classes() {
        let no_disk = from_imaging(&ImagingError::NoDisk("no disk matches".into()));
        assert_eq!(no_disk.kind, "DeviceNotFound");
        assert_eq!(no_disk.details, "no disk matches");
        assert!(from_imaging(&ImagingError::Invalid("bad".into())).is_invalid_content());
        assert_eq!(
            from_imaging(&ImagingError::Checksum("x".into())).kind,
            "ImageChecksumError"
        );
        assert!(!CommandError::execution("x").is_invalid_content());
    }
}

//! The kernel command line the agent was booted with, read as
//! ironic-python-agent reads it (`ipa-*` keys, `BOOTIF`); unknown keys are
//! ignored.

use std::collections::BTreeMap;
use std::time::Duration;

/// What the agent takes from its kernel command line.
#[derive(Debug, Clone, PartialEq)]
pub struct BootParams {
    /// `ipa-api-url`: the Bare Metal API URL(s), comma separated upstream.
    pub api_urls: Vec<String>,
    /// `BOOTIF=01-aa-bb-cc-dd-ee-ff`: the MAC the machine netbooted from,
    /// lower case and colon separated.
    pub bootif: Option<String>,
    /// `ipa-global-request-id`: sent as `X-OpenStack-Request-ID`.
    pub global_request_id: Option<String>,
    /// `ipa-insecure`: do not verify the API's TLS certificate.
    pub insecure: bool,
    /// `ipa-ironic-api-version`: skip version discovery.
    pub ironic_api_version: Option<(u32, u32)>,
    /// `ipa-advertise-host`: host put in the callback URL.
    pub advertise_host: Option<String>,
    /// `ipa-advertise-port`: port put in the callback URL.
    pub advertise_port: Option<u16>,
    /// `ipa-lookup-interval`: first wait between lookup attempts.
    pub lookup_interval: Duration,
    /// `ipa-agent-token`: a token known before the lookup (virtual media).
    pub agent_token: Option<String>,
    /// `ipa-http-request-timeout`: timeout of every API request.
    pub http_request_timeout: Duration,
    /// `ipa-disk-wait-attempts` / `ipa-disk-wait-delay`: how long to wait
    /// for the root device to appear when the node changes.
    pub disk_wait_attempts: u32,
    pub disk_wait_delay: Duration,
}

impl Default for BootParams {
    fn default() -> BootParams {
        BootParams {
            api_urls: Vec::new(),
            bootif: None,
            global_request_id: None,
            insecure: false,
            ironic_api_version: None,
            advertise_host: None,
            advertise_port: None,
            lookup_interval: Duration::from_secs(1),
            agent_token: None,
            http_request_timeout: Duration::from_secs(30),
            disk_wait_attempts: 10,
            disk_wait_delay: Duration::from_secs(3),
        }
    }
}

/// Splits a kernel command line into `key[=value]` words; double quotes
/// group words (`key="a b"`) and are removed.
pub fn split(cmdline: &str) -> BTreeMap<String, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for ch in cmdline.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(current);
    }
    let mut out = BTreeMap::new();
    for word in words {
        match word.split_once('=') {
            Some((key, value)) => out.insert(key.to_string(), value.to_string()),
            None => out.insert(word, String::new()),
        };
    }
    out
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "1" | "true" | "yes" | "on" | "y" | "t"
    )
}

fn seconds(key: &str, value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("kernel parameter {key}={value:?} is not a number of seconds"))
}

/// `01-aa-bb-cc-dd-ee-ff` (PXE's hardware type 1 prefix) or a bare MAC
/// in any separator style → `aa:bb:cc:dd:ee:ff`.
pub fn parse_bootif(value: &str) -> Result<String, String> {
    let hex: Vec<&str> = value
        .split(['-', ':'])
        .filter(|part| !part.is_empty())
        .collect();
    let octets = match hex.len() {
        7 => &hex[1..],
        6 => &hex[..],
        _ => return Err(format!("BOOTIF={value:?} is not a MAC address")),
    };
    if octets
        .iter()
        .any(|o| o.len() != 2 || !o.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!("BOOTIF={value:?} is not a MAC address"));
    }
    Ok(octets.join(":").to_ascii_lowercase())
}

/// Parses the kernel command line. Unknown keys are ignored; a malformed
/// value of a known key is an error naming the key.
pub fn parse(cmdline: &str) -> Result<BootParams, String> {
    let words = split(cmdline);
    let mut params = BootParams::default();
    if let Some(urls) = words.get("ipa-api-url") {
        params.api_urls = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        for url in &params.api_urls {
            let parsed = url::Url::parse(url)
                .map_err(|err| format!("ipa-api-url={url:?} is not a URL: {err}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("ipa-api-url={url:?} must be an http(s) URL"));
            }
        }
    }
    if let Some(bootif) = words.get("BOOTIF") {
        params.bootif = Some(parse_bootif(bootif)?);
    }
    params.global_request_id = words
        .get("ipa-global-request-id")
        .filter(|v| !v.is_empty())
        .cloned();
    params.insecure = words.get("ipa-insecure").is_some_and(|v| truthy(v));
    if let Some(version) = words.get("ipa-ironic-api-version") {
        let parsed = version
            .split_once('.')
            .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
        params.ironic_api_version =
            Some(parsed.ok_or_else(|| {
                format!("ipa-ironic-api-version={version:?} is not of the form X.Y")
            })?);
    }
    params.advertise_host = words
        .get("ipa-advertise-host")
        .filter(|v| !v.is_empty())
        .cloned();
    if let Some(port) = words.get("ipa-advertise-port") {
        params.advertise_port = Some(
            port.parse()
                .map_err(|_| format!("ipa-advertise-port={port:?} is not a port number"))?,
        );
    }
    if let Some(value) = words.get("ipa-lookup-interval") {
        params.lookup_interval = seconds("ipa-lookup-interval", value)?;
    }
    params.agent_token = words
        .get("ipa-agent-token")
        .filter(|v| !v.is_empty())
        .cloned();
    if let Some(value) = words.get("ipa-http-request-timeout") {
        params.http_request_timeout = seconds("ipa-http-request-timeout", value)?;
    }
    if let Some(value) = words.get("ipa-disk-wait-attempts") {
        params.disk_wait_attempts = value
            .parse()
            .map_err(|_| format!("ipa-disk-wait-attempts={value:?} is not a count"))?;
    }
    if let Some(value) = words.get("ipa-disk-wait-delay") {
        params.disk_wait_delay = seconds("ipa-disk-wait-delay", value)?;
    }
    Ok(params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_ironic_puts_on_the_command_line() {
        let params = parse(
            "initrd=agent.ramdisk ipa-api-url=http://10.0.0.1:6385/ \
             BOOTIF=01-AA-bb-cc-dd-ee-0f ipa-global-request-id=req-1234 \
             ipa-insecure=1 coreos.configdrive=0 nofb nomodeset vga=normal \
             ipa-lookup-interval=0.5 something=\"quoted value\"",
        )
        .unwrap();
        assert_eq!(params.api_urls, vec!["http://10.0.0.1:6385".to_string()]);
        assert_eq!(params.bootif.as_deref(), Some("aa:bb:cc:dd:ee:0f"));
        assert_eq!(params.global_request_id.as_deref(), Some("req-1234"));
        assert!(params.insecure);
        assert_eq!(params.lookup_interval, Duration::from_millis(500));
        assert_eq!(params.ironic_api_version, None);
    }

    #[test]
    fn defaults_and_several_urls() {
        let params = parse("ipa-api-url=http://a:6385,https://b:6385 ipa-insecure=0").unwrap();
        assert_eq!(params.api_urls.len(), 2);
        assert!(!params.insecure);
        assert_eq!(params.bootif, None);
        assert_eq!(params.disk_wait_attempts, 10);
        let empty = parse("").unwrap();
        assert!(empty.api_urls.is_empty());
    }

    #[test]
    fn quotes_group_words() {
        let words = split("a=\"x y\" b c=d");
        assert_eq!(words.get("a").map(String::as_str), Some("x y"));
        assert_eq!(words.get("b").map(String::as_str), Some(""));
        assert_eq!(words.get("c").map(String::as_str), Some("d"));
    }

    #[test]
    fn malformed_known_values_are_errors() {
        assert!(parse("BOOTIF=01-aa-bb").unwrap_err().contains("BOOTIF"));
        assert!(parse("ipa-api-url=ftp://x").unwrap_err().contains("http"));
        assert!(parse("ipa-ironic-api-version=latest")
            .unwrap_err()
            .contains("ipa-ironic-api-version"));
        assert!(parse("ipa-lookup-interval=-1")
            .unwrap_err()
            .contains("ipa-lookup-interval"));
        assert_eq!(
            parse_bootif("aa:bb:cc:dd:ee:ff").unwrap(),
            "aa:bb:cc:dd:ee:ff"
        );
    }
}

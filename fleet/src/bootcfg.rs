//! Boot configurations as the conductor renders them (upstream ironic's
//! templates): pxelinux, grub and iPXE scripts. The firmware only needs the
//! kernel, the ramdisk and the kernel command line of the entry it boots.

use std::collections::HashMap;

/// What a boot configuration says to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    /// Kernel path (TFTP, relative to the server's root) or URL (iPXE).
    pub kernel: String,
    /// Ramdisk path or URL.
    pub initrd: String,
    /// Kernel command line.
    pub params: String,
    /// pxelinux `ipappend 2`: append `BOOTIF=01-<mac>`.
    pub ipappend_bootif: bool,
}

fn words(line: &str) -> (String, &str) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((k, rest)) => (k.to_ascii_lowercase(), rest.trim()),
        None => (line.to_ascii_lowercase(), ""),
    }
}

/// A pxelinux configuration: the `default` label's `kernel` and `append`
/// (whose `initrd=` names the ramdisk).
pub fn parse_pxelinux(text: &str) -> Result<BootEntry, String> {
    #[derive(Default)]
    struct Label {
        kernel: Option<String>,
        append: String,
        ipappend: bool,
    }
    let mut default: Option<String> = None;
    let mut labels: Vec<(String, Label)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = words(line);
        match key.as_str() {
            "default" => default = Some(rest.to_string()),
            "label" => labels.push((rest.to_string(), Label::default())),
            "kernel" | "linux" => {
                if let Some((_, label)) = labels.last_mut() {
                    label.kernel = Some(rest.to_string());
                }
            }
            "append" => {
                if let Some((_, label)) = labels.last_mut() {
                    label.append = rest.to_string();
                }
            }
            "ipappend" => {
                if let Some((_, label)) = labels.last_mut() {
                    label.ipappend = rest.trim().parse::<u32>().is_ok_and(|v| v & 2 != 0);
                }
            }
            _ => {}
        }
    }
    let (name, label) = match &default {
        Some(name) => labels
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("pxelinux config: default label {name:?} is not defined"))?,
        None => labels
            .first()
            .ok_or_else(|| "pxelinux config: no label".to_string())?,
    };
    let kernel = label
        .kernel
        .clone()
        .ok_or_else(|| format!("pxelinux config: label {name:?} has no kernel"))?;
    let initrd = label
        .append
        .split_whitespace()
        .find_map(|w| w.strip_prefix("initrd="))
        .map(|v| v.split(',').next().unwrap_or(v).to_string())
        .ok_or_else(|| format!("pxelinux config: label {name:?} has no initrd= in append"))?;
    Ok(BootEntry {
        kernel,
        initrd,
        params: label.append.clone(),
        ipappend_bootif: label.ipappend,
    })
}

/// A grub configuration: the default `menuentry`'s `linux`/`linuxefi` and
/// `initrd`/`initrdefi` lines.
pub fn parse_grub(text: &str) -> Result<BootEntry, String> {
    struct Entry {
        title: String,
        linux: Option<(String, String)>,
        initrd: Option<String>,
    }
    let mut default: Option<String> = None;
    let mut entries: Vec<Entry> = Vec::new();
    let mut inside = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("set ") {
            if let Some((k, v)) = rest.split_once('=') {
                if k.trim() == "default" {
                    default = Some(v.trim().trim_matches(['"', '\'']).to_string());
                }
            }
            continue;
        }
        if line.starts_with("menuentry") {
            let title = line
                .split(['"', '\''])
                .nth(1)
                .unwrap_or_default()
                .to_string();
            entries.push(Entry {
                title,
                linux: None,
                initrd: None,
            });
            inside = true;
            continue;
        }
        if line.starts_with('}') {
            inside = false;
            continue;
        }
        if !inside {
            continue;
        }
        let (key, rest) = words(line);
        let Some(entry) = entries.last_mut() else {
            continue;
        };
        match key.as_str() {
            "linux" | "linuxefi" | "linux16" => {
                let (kernel, params) = match rest.split_once(char::is_whitespace) {
                    Some((k, p)) => (k.to_string(), p.trim().to_string()),
                    None => (rest.to_string(), String::new()),
                };
                entry.linux = Some((kernel, params));
            }
            "initrd" | "initrdefi" | "initrd16" => {
                entry.initrd = rest.split_whitespace().next().map(str::to_string);
            }
            _ => {}
        }
    }
    let entry = match &default {
        Some(d) => match d.parse::<usize>() {
            Ok(i) => entries.get(i),
            Err(_) => entries.iter().find(|e| &e.title == d),
        }
        .ok_or_else(|| format!("grub config: default entry {d:?} is not defined"))?,
        None => entries
            .first()
            .ok_or_else(|| "grub config: no menuentry".to_string())?,
    };
    let (kernel, params) = entry
        .linux
        .clone()
        .ok_or_else(|| format!("grub config: entry {:?} has no linux line", entry.title))?;
    let initrd = entry
        .initrd
        .clone()
        .ok_or_else(|| format!("grub config: entry {:?} has no initrd line", entry.title))?;
    Ok(BootEntry {
        kernel: strip_grub_device(&kernel),
        initrd: strip_grub_device(&initrd),
        params,
        ipappend_bootif: false,
    })
}

/// `(tftp)/x`, `(tftp,10.0.0.1)/x`, `($root)/x` → `x`; leading `/` removed.
fn strip_grub_device(path: &str) -> String {
    let path = match path.strip_prefix('(') {
        Some(rest) => rest.split_once(')').map_or(rest, |(_, p)| p),
        None => path,
    };
    path.trim_start_matches('/').to_string()
}

/// Where an iPXE script run stands after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpxeOutcome {
    /// `chain <url>`: fetch that script and run it (URL already expanded and
    /// resolved against the script's own URL).
    Chain(String),
    /// `boot` with a kernel and an initrd loaded.
    Boot(BootEntry),
}

/// Runs an iPXE script far enough to know what it boots: variables (`set`,
/// `inc`, `isset`, `iseq`, `${...}` expansion including nesting and
/// `:hexhyp`), labels and `goto`, `||`/`&&`, `chain`, `kernel`, `initrd`,
/// `boot`. `chain_ok` says whether a chain target exists (the firmware tries
/// to fetch it); `vars` holds `mac` and `net<N>/mac`.
pub fn run_ipxe(
    script: &str,
    base_url: &str,
    vars: &HashMap<String, String>,
    chain_ok: &mut dyn FnMut(&str) -> bool,
) -> Result<IpxeOutcome, String> {
    let lines: Vec<&str> = script.lines().collect();
    let mut labels: HashMap<&str, usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(label) = line.trim().strip_prefix(':') {
            labels.insert(label.trim(), i);
        }
    }
    let mut vars = vars.clone();
    let mut kernel: Option<(String, String)> = None;
    let mut initrd: Option<String> = None;
    let mut pc = 0usize;
    let mut steps = 0u32;
    while pc < lines.len() {
        steps += 1;
        if steps > 10_000 {
            return Err("iPXE script: too many steps (endless loop?)".into());
        }
        let line = lines[pc].trim();
        pc += 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(':') {
            continue;
        }
        // A line is commands joined by `||` (run on failure) and `&&` (run
        // on success).
        let mut rest = line;
        let mut previous_ok = true;
        let mut connector: Option<&str> = None;
        loop {
            let (command, next, next_connector) = split_connector(rest);
            let run = match connector {
                None => true,
                Some("||") => !previous_ok,
                _ => previous_ok,
            };
            if run {
                let command = command.trim();
                let (word, args) = words(command);
                let args = expand(args, &vars)?;
                let ok = match word.as_str() {
                    "" => true,
                    "goto" => {
                        let target = args.trim();
                        pc = *labels
                            .get(target)
                            .ok_or_else(|| format!("iPXE script: no label {target:?}"))?;
                        break;
                    }
                    "set" => {
                        let (name, value) = match args.split_once(char::is_whitespace) {
                            Some((n, v)) => (n, v.trim()),
                            None => (args.as_str(), ""),
                        };
                        let name = name.split(':').next().unwrap_or(name);
                        vars.insert(name.to_string(), value.to_string());
                        true
                    }
                    "inc" => {
                        let name = args.split_whitespace().next().unwrap_or_default();
                        let value = vars.get(name).and_then(|v| v.parse::<i64>().ok());
                        vars.insert(name.to_string(), (value.unwrap_or(0) + 1).to_string());
                        true
                    }
                    "isset" => !args.trim().is_empty(),
                    "iseq" => {
                        let mut parts = args.split_whitespace();
                        parts.next() == parts.next()
                    }
                    "chain" | "chainload" => {
                        let url = positional(&args).first().map(|u| resolve(base_url, u));
                        match url {
                            Some(url) if chain_ok(&url) => return Ok(IpxeOutcome::Chain(url)),
                            _ => false,
                        }
                    }
                    "kernel" | "imgexec" => {
                        let mut parts = positional(&args).into_iter();
                        match parts.next() {
                            Some(url) => {
                                let params: Vec<&str> = parts.collect();
                                kernel = Some((resolve(base_url, url), params.join(" ")));
                                true
                            }
                            None => false,
                        }
                    }
                    "initrd" | "imgfetch" | "module" => match positional(&args).first() {
                        Some(url) => {
                            initrd = Some(resolve(base_url, url));
                            true
                        }
                        None => false,
                    },
                    "boot" => match (&kernel, &initrd) {
                        (Some((k, params)), Some(i)) => {
                            return Ok(IpxeOutcome::Boot(BootEntry {
                                kernel: k.clone(),
                                initrd: i.clone(),
                                params: params.clone(),
                                ipappend_bootif: false,
                            }))
                        }
                        _ => false,
                    },
                    "imgfree" => {
                        kernel = None;
                        initrd = None;
                        true
                    }
                    "reboot" | "poweroff" | "exit" | "shell" => {
                        return Err(format!(
                            "iPXE script gave up ({command}) without booting anything"
                        ))
                    }
                    // echo, sleep, prompt, dhcp, ifconf…: succeed.
                    _ => true,
                };
                previous_ok = ok;
            }
            match next {
                Some(n) => {
                    rest = n;
                    connector = next_connector;
                }
                None => break,
            }
        }
    }
    Err("iPXE script ended without booting anything".into())
}

/// Splits off the first command of `line` at `||` or `&&`.
fn split_connector(line: &str) -> (&str, Option<&str>, Option<&'static str>) {
    let or = line.find("||");
    let and = line.find("&&");
    match (or, and) {
        (Some(o), Some(a)) if a < o => (&line[..a], Some(&line[a + 2..]), Some("&&")),
        (Some(o), _) => (&line[..o], Some(&line[o + 2..]), Some("||")),
        (None, Some(a)) => (&line[..a], Some(&line[a + 2..]), Some("&&")),
        (None, None) => (line, None, None),
    }
}

/// Arguments without `--option value` / `--flag` switches.
fn positional(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut it = args.split_whitespace();
    while let Some(word) = it.next() {
        if let Some(opt) = word.strip_prefix("--") {
            if !opt.contains('=') && matches!(opt, "timeout" | "name" | "n" | "t") {
                it.next();
            }
            continue;
        }
        if word.len() == 2 && word.starts_with('-') {
            it.next();
            continue;
        }
        out.push(word);
    }
    out
}

/// Expands `${name}` and `${name:type}` (innermost first); unknown names
/// expand to nothing, as in iPXE.
fn expand(text: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = text.to_string();
    for _ in 0..64 {
        let Some(start) = out.rfind("${") else {
            return Ok(out);
        };
        let Some(len) = out[start..].find('}') else {
            return Err(format!("iPXE script: unterminated variable in {text:?}"));
        };
        let inner = &out[start + 2..start + len];
        let (name, kind) = match inner.split_once(':') {
            Some((n, k)) => (n, Some(k)),
            None => (inner, None),
        };
        let value = vars.get(name).cloned().unwrap_or_default();
        let value = match kind {
            Some("hexhyp") => value.replace(':', "-"),
            Some("hexraw") => value.replace(':', ""),
            _ => value,
        };
        out.replace_range(start..start + len + 1, &value);
    }
    Err(format!(
        "iPXE script: variables nested too deeply in {text:?}"
    ))
}

/// Resolves `reference` against `base` as iPXE does for relative URIs.
pub fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let Some(scheme_end) = base.find("://") else {
        return reference.to_string();
    };
    let after = scheme_end + 3;
    let host_end = base[after..].find('/').map_or(base.len(), |i| after + i);
    if let Some(abs) = reference.strip_prefix('/') {
        return format!("{}/{}", &base[..host_end], abs);
    }
    let path = &base[host_end..];
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{}{}{}", &base[..host_end], dir, reference)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pxelinux_default_label_and_errors() {
        let cfg = "default two\nlabel one\nkernel k1\nappend initrd=r1 a=1\n\
                   label two\nkernel k2\nappend x=1 initrd=r2,extra y=2\n";
        let entry = parse_pxelinux(cfg).unwrap();
        assert_eq!(entry.kernel, "k2");
        assert_eq!(entry.initrd, "r2");
        assert_eq!(entry.params, "x=1 initrd=r2,extra y=2");
        assert!(!entry.ipappend_bootif);
        // Without `default`, the first label.
        let entry = parse_pxelinux("label a\nkernel k\nappend initrd=r\nipappend 2\n").unwrap();
        assert_eq!(entry.kernel, "k");
        assert!(entry.ipappend_bootif);
        assert!(
            parse_pxelinux("default nope\nlabel a\nkernel k\nappend initrd=r\n")
                .unwrap_err()
                .contains("nope")
        );
        assert!(parse_pxelinux("label a\nappend initrd=r\n")
            .unwrap_err()
            .contains("no kernel"));
        assert!(parse_pxelinux("label a\nkernel k\nappend quiet\n")
            .unwrap_err()
            .contains("initrd"));
        assert!(parse_pxelinux("").is_err());
    }

    #[test]
    fn grub_default_by_title_or_index() {
        let cfg = "set default=1\nmenuentry \"a\" {\n linux /ka p=a\n initrd /ra\n}\n\
                   menuentry 'b' --class os {\n linuxefi (tftp)/kb p=b q\n initrdefi (tftp,10.0.0.1)/rb\n}\n";
        let entry = parse_grub(cfg).unwrap();
        assert_eq!(
            (
                entry.kernel.as_str(),
                entry.initrd.as_str(),
                entry.params.as_str()
            ),
            ("kb", "rb", "p=b q")
        );
        let entry = parse_grub(&cfg.replace("set default=1", "set default=\"a\"")).unwrap();
        assert_eq!(entry.kernel, "ka");
        assert!(parse_grub("menuentry \"x\" {\n initrd r\n}\n")
            .unwrap_err()
            .contains("no linux"));
        assert!(parse_grub("set default=z\n").is_err());
    }

    fn vars() -> HashMap<String, String> {
        let mut v = HashMap::new();
        v.insert("mac".to_string(), "52:54:00:00:00:01".to_string());
        v.insert("net0/mac".to_string(), "52:54:00:00:00:01".to_string());
        v
    }

    #[test]
    fn ipxe_retries_and_gives_up() {
        // The kernel line "fails" only if the interpreter makes it fail; a
        // script that never boots ends in an error, not a loop.
        let script = "#!ipxe\nset i:int32 0\n:retry\niseq ${i} 3 && goto fail ||\ninc i\ngoto retry\n:fail\npoweroff\n";
        let err = run_ipxe(script, "http://h/x", &vars(), &mut |_| true).unwrap_err();
        assert!(err.contains("poweroff"), "{err}");
        let endless = "#!ipxe\n:a\ngoto a\n";
        assert!(run_ipxe(endless, "http://h/x", &vars(), &mut |_| true)
            .unwrap_err()
            .contains("too many steps"));
    }

    #[test]
    fn ipxe_chain_falls_back_when_the_target_is_missing() {
        let script =
            "chain --autofree cfg/${mac:hexhyp} || goto other\n:other\nchain /abs/${mac:hexraw}\n";
        let out = run_ipxe(script, "http://h:8/dir/boot.ipxe", &vars(), &mut |_| true).unwrap();
        assert_eq!(
            out,
            IpxeOutcome::Chain("http://h:8/dir/cfg/52-54-00-00-00-01".into())
        );
        let out = run_ipxe(script, "http://h:8/dir/boot.ipxe", &vars(), &mut |u| {
            !u.contains("/cfg/")
        })
        .unwrap();
        assert_eq!(
            out,
            IpxeOutcome::Chain("http://h:8/abs/525400000001".into())
        );
    }

    #[test]
    fn ipxe_boot_needs_kernel_and_initrd() {
        let script = "kernel --timeout 5 k.img a=${mac} b\ninitrd http://o/r.img\nboot\n";
        let out = run_ipxe(script, "http://h/d/s", &vars(), &mut |_| true).unwrap();
        assert_eq!(
            out,
            IpxeOutcome::Boot(BootEntry {
                kernel: "http://h/d/k.img".into(),
                initrd: "http://o/r.img".into(),
                params: "a=52:54:00:00:00:01 b".into(),
                ipappend_bootif: false,
            })
        );
        assert!(run_ipxe(
            "kernel k\nboot || poweroff\n",
            "http://h/",
            &vars(),
            &mut |_| true
        )
        .is_err());
    }

    #[test]
    fn resolves_relative_references() {
        assert_eq!(resolve("http://h:1/a/b.ipxe", "c/d"), "http://h:1/a/c/d");
        assert_eq!(resolve("http://h:1/a/b.ipxe", "/c"), "http://h:1/c");
        assert_eq!(resolve("http://h:1", "c"), "http://h:1/c");
        assert_eq!(resolve("http://h/a", "https://x/y"), "https://x/y");
    }
}

//! Authentication context (upstream's `noauth2` strategy) and policy
//! enforcement with oslo.policy's check-string language.
//!
//! Placement's default rules are built in, in both of upstream's modes:
//! legacy (a rule with a deprecated alternative passes when either passes) and
//! secure RBAC (`enforce_new_defaults`). A YAML or JSON policy file overrides
//! individual rules. Every placement rule is project-scoped, so a
//! system-scoped token is refused, as oslo.policy does now that scope
//! enforcement is always on.

use std::collections::HashMap;

use crate::error::ApiError;

/// Who is calling, as derived from the request headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credentials {
    pub user_id: String,
    pub project_id: Option<String>,
    /// Lower-cased role names.
    pub roles: Vec<String>,
    pub system_scope: Option<String>,
}

impl Credentials {
    /// Upstream `noauth2`: the token is `user[:project]`; `admin` gets the admin
    /// role unless `x-roles` says otherwise; `x-project-id` and
    /// `openstack-system-scope` are honoured. `None` means 401.
    pub fn from_headers(
        token: Option<&str>,
        roles: Option<&str>,
        project_header: Option<&str>,
        system_scope: Option<&str>,
    ) -> Option<Credentials> {
        let token = token?;
        let (user, project) = match token.split_once(':') {
            Some((user, project)) if !project.is_empty() => (user, project),
            Some((user, _)) => (user, user),
            None => (token, token),
        };
        let roles: Vec<String> = match roles {
            Some(roles) => roles
                .split(',')
                .map(|r| r.trim().to_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
            None if user == "admin" => vec!["admin".to_string()],
            None => Vec::new(),
        };
        let system_scope = system_scope.filter(|s| !s.is_empty()).map(str::to_string);
        let project_id = match project_header {
            Some(p) if !p.is_empty() => Some(p.to_string()),
            _ if system_scope.is_some() => None,
            _ => Some(project.to_string()),
        };
        Some(Credentials {
            user_id: user.to_string(),
            project_id,
            roles,
            system_scope,
        })
    }
}

/// The object a rule is checked against (e.g. `project_id` for usages).
pub type Target = HashMap<&'static str, String>;

#[derive(Debug, Clone, PartialEq)]
enum Check {
    Always,
    Never,
    Role(String),
    Rule(String),
    /// `field:value` where value may be `%(target_key)s` or a literal.
    Generic(String, String),
    Not(Box<Check>),
    And(Vec<Check>),
    Or(Vec<Check>),
}

/// Parses an oslo.policy check string. Unparseable strings deny, as upstream.
fn parse_check(text: &str) -> Check {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Check::Always;
    }
    let mut pos = 0;
    match parse_or(&tokens, &mut pos) {
        Some(check) if pos == tokens.len() => check,
        _ => Check::Never,
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while let Some(rest) = word.strip_prefix('(') {
            tokens.push("(".to_string());
            word = rest;
        }
        let mut closing = 0;
        while let Some(rest) = word.strip_suffix(')') {
            closing += 1;
            word = rest;
        }
        if !word.is_empty() {
            tokens.push(word.to_string());
        }
        for _ in 0..closing {
            tokens.push(")".to_string());
        }
    }
    tokens
}

fn parse_or(tokens: &[String], pos: &mut usize) -> Option<Check> {
    let mut items = vec![parse_and(tokens, pos)?];
    while tokens
        .get(*pos)
        .is_some_and(|t| t.eq_ignore_ascii_case("or"))
    {
        *pos += 1;
        items.push(parse_and(tokens, pos)?);
    }
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        Check::Or(items)
    })
}

fn parse_and(tokens: &[String], pos: &mut usize) -> Option<Check> {
    let mut items = vec![parse_not(tokens, pos)?];
    while tokens
        .get(*pos)
        .is_some_and(|t| t.eq_ignore_ascii_case("and"))
    {
        *pos += 1;
        items.push(parse_not(tokens, pos)?);
    }
    Some(if items.len() == 1 {
        items.remove(0)
    } else {
        Check::And(items)
    })
}

fn parse_not(tokens: &[String], pos: &mut usize) -> Option<Check> {
    if tokens
        .get(*pos)
        .is_some_and(|t| t.eq_ignore_ascii_case("not"))
    {
        *pos += 1;
        return Some(Check::Not(Box::new(parse_not(tokens, pos)?)));
    }
    parse_atom(tokens, pos)
}

fn parse_atom(tokens: &[String], pos: &mut usize) -> Option<Check> {
    let token = tokens.get(*pos)?;
    *pos += 1;
    if token == "(" {
        let inner = parse_or(tokens, pos)?;
        if tokens.get(*pos).map(String::as_str) != Some(")") {
            return None;
        }
        *pos += 1;
        return Some(inner);
    }
    Some(match token.as_str() {
        "@" => Check::Always,
        "!" => Check::Never,
        _ => match token.split_once(':') {
            Some(("role", role)) => Check::Role(role.to_lowercase()),
            Some(("rule", rule)) => Check::Rule(rule.to_string()),
            Some((field, value)) => Check::Generic(field.to_string(), value.to_string()),
            None => Check::Never,
        },
    })
}

/// Scope every default placement rule declares.
const PROJECT_SCOPED: bool = true;

/// Upstream's default rules: (name, check, deprecated check for legacy mode).
const BASE_RULES: &[(&str, &str, Option<&str>)] = &[
    ("admin_api", "role:admin", None),
    ("service_api", "role:service", Some("role:admin")),
    (
        "admin_or_service_api",
        "role:admin or role:service",
        Some("role:admin"),
    ),
    (
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
        Some("role:admin"),
    ),
    (
        "admin_or_project_reader_or_service_api",
        "role:admin or rule:project_reader_api or role:service",
        Some("role:admin"),
    ),
];

/// Every action the API checks and its default rule.
pub const ACTIONS: &[(&str, &str)] = &[
    (
        "placement:resource_providers:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:create",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:show",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:update",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:delete",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_classes:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_classes:create",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_classes:show",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_classes:update",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_classes:delete",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:inventories:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:inventories:create",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:inventories:show",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:inventories:update",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:inventories:delete",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:aggregates:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:aggregates:update",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:usages",
        "rule:admin_or_service_api",
    ),
    (
        "placement:usages",
        "rule:admin_or_project_reader_or_service_api",
    ),
    ("placement:traits:list", "rule:admin_or_service_api"),
    ("placement:traits:show", "rule:admin_or_service_api"),
    ("placement:traits:update", "rule:admin_or_service_api"),
    ("placement:traits:delete", "rule:admin_or_service_api"),
    (
        "placement:resource_providers:traits:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:traits:update",
        "rule:admin_or_service_api",
    ),
    (
        "placement:resource_providers:traits:delete",
        "rule:admin_or_service_api",
    ),
    ("placement:allocations:manage", "rule:admin_or_service_api"),
    ("placement:allocations:list", "rule:admin_or_service_api"),
    ("placement:allocations:update", "rule:admin_or_service_api"),
    ("placement:allocations:delete", "rule:admin_or_service_api"),
    (
        "placement:resource_providers:allocations:list",
        "rule:admin_or_service_api",
    ),
    (
        "placement:allocation_candidates:list",
        "rule:admin_or_service_api",
    ),
    ("placement:reshaper:reshape", "rule:service_api"),
];

#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy file {path} is not a mapping of rule names to check strings: {message}")]
    Parse { path: String, message: String },
}

/// The compiled rule set.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: HashMap<String, Check>,
}

impl Policy {
    /// Builds the default rules for the chosen mode, then applies overrides
    /// (rule name → check string) from a policy file.
    pub fn new(enforce_new_defaults: bool, overrides: &HashMap<String, String>) -> Policy {
        let mut rules = HashMap::new();
        for (name, check, deprecated) in BASE_RULES {
            let text = match deprecated {
                Some(old) if !enforce_new_defaults => format!("({check}) or ({old})"),
                _ => (*check).to_string(),
            };
            rules.insert((*name).to_string(), parse_check(&text));
        }
        for (name, check) in ACTIONS {
            rules.insert((*name).to_string(), parse_check(check));
        }
        for (name, check) in overrides {
            rules.insert(name.clone(), parse_check(check));
        }
        Policy { rules }
    }

    /// Reads a policy file: YAML (of which JSON is a subset) mapping names to
    /// check strings.
    pub fn read_overrides(path: &str) -> Result<HashMap<String, String>, PolicyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
            path: path.to_string(),
            source,
        })?;
        if text.trim().is_empty() {
            return Ok(HashMap::new());
        }
        serde_yaml::from_str::<HashMap<String, String>>(&text).map_err(|e| PolicyFileError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Checks `action` for `creds`; a refusal is upstream's 403.
    pub fn authorize(
        &self,
        action: &str,
        creds: &Credentials,
        target: &Target,
    ) -> Result<(), ApiError> {
        let denied =
            || ApiError::forbidden(format!("Policy does not allow {action} to be performed."));
        // Scope enforcement: placement's rules are all project-scoped.
        if PROJECT_SCOPED && creds.system_scope.is_some() {
            return Err(denied());
        }
        let Some(rule) = self.rules.get(action) else {
            return Err(denied());
        };
        if self.evaluate(rule, creds, target, 0) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn evaluate(&self, check: &Check, creds: &Credentials, target: &Target, depth: u8) -> bool {
        // Rules referring to rules could loop; oslo.policy would recurse
        // forever, we stop and deny.
        if depth > 16 {
            return false;
        }
        match check {
            Check::Always => true,
            Check::Never => false,
            Check::Role(role) => creds.roles.iter().any(|r| r == role),
            Check::Rule(name) => match self.rules.get(name) {
                Some(rule) => self.evaluate(rule, creds, target, depth + 1),
                None => false,
            },
            Check::Generic(field, value) => {
                let expected = match value.strip_prefix("%(").and_then(|v| v.strip_suffix(")s")) {
                    Some(key) => match target.get(key) {
                        Some(v) => v.clone(),
                        None => return false,
                    },
                    None => value.trim_matches('\'').to_string(),
                };
                let actual = match field.as_str() {
                    "project_id" | "tenant" | "tenant_id" => creds.project_id.clone(),
                    "user_id" | "user" => Some(creds.user_id.clone()),
                    "system_scope" => creds.system_scope.clone(),
                    _ => None,
                };
                actual.is_some_and(|a| a == expected)
            }
            Check::Not(inner) => !self.evaluate(inner, creds, target, depth + 1),
            Check::And(items) => items
                .iter()
                .all(|c| self.evaluate(c, creds, target, depth + 1)),
            Check::Or(items) => items
                .iter()
                .any(|c| self.evaluate(c, creds, target, depth + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(roles: &[&str], project: &str) -> Credentials {
        Credentials {
            user_id: "u".into(),
            project_id: Some(project.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            system_scope: None,
        }
    }

    #[test]
    fn legacy_and_secure_defaults() {
        let legacy = Policy::new(false, &HashMap::new());
        let secure = Policy::new(true, &HashMap::new());
        let target = Target::new();
        let action = "placement:reshaper:reshape";
        // Legacy mode lets admins reshape through the deprecated rule.
        assert!(legacy
            .authorize(action, &creds(&["admin"], "p"), &target)
            .is_ok());
        assert!(secure
            .authorize(action, &creds(&["admin"], "p"), &target)
            .is_err());
        assert!(secure
            .authorize(action, &creds(&["service"], "p"), &target)
            .is_ok());
        assert!(legacy
            .authorize(action, &creds(&["member"], "p"), &target)
            .is_err());
    }

    #[test]
    fn project_reader_sees_own_usages_only() {
        let secure = Policy::new(true, &HashMap::new());
        let mut target = Target::new();
        target.insert("project_id", "p1".into());
        let reader = creds(&["reader"], "p1");
        assert!(secure
            .authorize("placement:usages", &reader, &target)
            .is_ok());
        let other = creds(&["reader"], "p2");
        assert!(secure
            .authorize("placement:usages", &other, &target)
            .is_err());
    }

    #[test]
    fn system_scope_is_refused() {
        let policy = Policy::new(false, &HashMap::new());
        let mut admin = creds(&["admin"], "p");
        admin.system_scope = Some("all".into());
        let err = policy
            .authorize("placement:traits:list", &admin, &Target::new())
            .expect_err("must fail");
        assert_eq!(err.status, 403);
    }

    #[test]
    fn overrides_and_grammar() {
        let mut overrides = HashMap::new();
        overrides.insert("placement:traits:list".to_string(), "@".to_string());
        overrides.insert(
            "placement:traits:show".to_string(),
            "(role:a or role:b) and not role:c".to_string(),
        );
        let policy = Policy::new(true, &overrides);
        let t = Target::new();
        assert!(policy
            .authorize("placement:traits:list", &creds(&[], "p"), &t)
            .is_ok());
        assert!(policy
            .authorize("placement:traits:show", &creds(&["b"], "p"), &t)
            .is_ok());
        assert!(policy
            .authorize("placement:traits:show", &creds(&["b", "c"], "p"), &t)
            .is_err());
        assert_eq!(parse_check("role:a and"), Check::Never);
    }

    #[test]
    fn noauth_headers() {
        let c = Credentials::from_headers(Some("admin"), None, None, None).expect("must parse");
        assert_eq!(c.roles, vec!["admin"]);
        assert_eq!(c.project_id.as_deref(), Some("admin"));
        let c = Credentials::from_headers(Some("bob:proj"), Some("Reader, member"), None, None)
            .expect("must parse");
        assert_eq!(c.project_id.as_deref(), Some("proj"));
        assert_eq!(c.roles, vec!["reader", "member"]);
        let c = Credentials::from_headers(Some("u"), Some("admin"), None, Some("all"))
            .expect("must parse");
        assert_eq!(c.project_id, None);
        assert!(Credentials::from_headers(None, None, None, None).is_none());
    }
}

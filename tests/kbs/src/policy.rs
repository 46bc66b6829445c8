//! The resource policy: a small, ordered allow/deny rule list in place of Trustee's rego.
//!
//! It is evaluated on the same inputs as Trustee's `data.policy.allow`: the verified token's
//! claims and the requested resource path. The first rule whose conditions all hold decides;
//! when none does, `default` decides. A denial is answered with 401 `PolicyDeny`.
//!
//! File format (TOML):
//!
//! ```toml
//! default = "deny"                 # "allow" | "deny" when no rule matches (default: "deny")
//!
//! [[rules]]
//! effect = "deny"                  # "allow" | "deny"
//! resource = "default/keys/*"      # optional: the path after /kbs/v0/resource/, `*` matches
//!                                  # exactly one segment; absent = any path (even malformed ones)
//!
//! [[rules]]
//! effect = "allow"
//! tee = ["sample", "snp", "tdx"]   # optional: the TEE the token was issued for (the TEE key of
//!                                  # submods.cpu0["ear.veraison.annotated-evidence"])
//! status = ["affirming"]           # optional: allowed submods.cpu0["ear.status"] values
//! ```
//!
//! Without a policy the server uses [`Policy::default`]: allow any resource to any attested TEE
//! whose `ear.status` is `affirming` (the policy of the recorded Trustee, minus its sample-only
//! clause), deny everything else. Note that a rule with `resource` never matches a path with a
//! different number of segments, so that malformed paths still reach the resource step and get
//! Trustee's `PluginInternalError` when the policy allows them.

use crate::rcar::Tee;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// What a rule (or the default) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Serve the resource.
    Allow,
    /// 401 `PolicyDeny`.
    Deny,
}

/// One rule; every condition that is present must hold for the rule to match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The decision when the rule matches.
    pub effect: Effect,
    /// `repo/type/tag` pattern, `*` = any one segment.
    #[serde(default)]
    pub resource: Option<String>,
    /// TEE wire names (`sample`, `snp`, `tdx`, ...).
    #[serde(default)]
    pub tee: Option<Vec<String>>,
    /// `ear.status` values (`affirming`, `warning`, `contraindicated`, `none`).
    #[serde(default)]
    pub status: Option<Vec<String>>,
}

/// An ordered rule list and a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The decision when no rule matches.
    #[serde(default = "deny")]
    pub default: Effect,
    /// Evaluated in order; the first match decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn deny() -> Effect {
    Effect::Deny
}

const STATUSES: [&str; 4] = ["affirming", "warning", "contraindicated", "none"];

/// Keys of the annotated evidence that are not TEE names.
const NOT_TEES: [&str; 4] = [
    "report_data",
    "runtime_data_claims",
    "init_data",
    "init_data_claims",
];

impl Default for Policy {
    /// Allow any resource to any TEE whose `ear.status` is `affirming`.
    fn default() -> Self {
        Policy {
            default: Effect::Deny,
            rules: vec![Rule {
                effect: Effect::Allow,
                resource: None,
                tee: None,
                status: Some(vec!["affirming".into()]),
            }],
        }
    }
}

impl Policy {
    /// Every attested TEE gets every resource, whatever its appraisal.
    pub fn allow_all() -> Self {
        Policy {
            default: Effect::Allow,
            rules: Vec::new(),
        }
    }

    /// Nothing is served.
    pub fn deny_all() -> Self {
        Policy {
            default: Effect::Deny,
            rules: Vec::new(),
        }
    }

    /// Parses and checks the TOML format described in the module documentation.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        policy.check()?;
        Ok(policy)
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Policy::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Rejects unknown TEE names and statuses and empty pattern segments, which would
    /// otherwise silently never match.
    pub fn check(&self) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            let n = i + 1;
            if let Some(pattern) = &rule.resource
                && pattern.split('/').any(str::is_empty)
            {
                return Err(format!("rule {n}: empty segment in resource {pattern:?}"));
            }
            for tee in rule.tee.iter().flatten() {
                if Tee::from_name(tee).is_none() {
                    return Err(format!("rule {n}: unknown tee {tee:?}"));
                }
            }
            for status in rule.status.iter().flatten() {
                if !STATUSES.contains(&status.as_str()) {
                    return Err(format!("rule {n}: unknown ear.status {status:?}"));
                }
            }
        }
        Ok(())
    }

    /// Decides for verified token `claims` and the resource path segments.
    pub fn allows(&self, claims: &Value, resource_path: &[&str]) -> bool {
        let cpu0 = claims.pointer("/submods/cpu0");
        let status = cpu0
            .and_then(|c| c.get("ear.status"))
            .and_then(Value::as_str);
        let tees: Vec<&str> = cpu0
            .and_then(|c| c.get("ear.veraison.annotated-evidence"))
            .and_then(Value::as_object)
            .map(|m| {
                m.keys()
                    .map(String::as_str)
                    .filter(|k| !NOT_TEES.contains(k))
                    .collect()
            })
            .unwrap_or_default();
        let effect =
            self.rules
                .iter()
                .find(|rule| {
                    rule.resource
                        .as_deref()
                        .is_none_or(|p| pattern_matches(p, resource_path))
                        && rule.tee.as_ref().is_none_or(|allowed| {
                            tees.iter().any(|t| allowed.iter().any(|a| a == t))
                        })
                        && rule.status.as_ref().is_none_or(|allowed| {
                            status.is_some_and(|s| allowed.iter().any(|a| a == s))
                        })
                })
                .map_or(self.default, |rule| rule.effect);
        effect == Effect::Allow
    }
}

fn pattern_matches(pattern: &str, path: &[&str]) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    pattern.len() == path.len() && pattern.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(tee: &str, status: &str) -> Value {
        json!({"submods": {"cpu0": {
            "ear.status": status,
            "ear.veraison.annotated-evidence": {tee: {}, "report_data": "", "runtime_data_claims": {}}
        }}})
    }

    #[test]
    fn default_allows_affirming_only() {
        let p = Policy::default();
        assert!(p.allows(&claims("sample", "affirming"), &["a", "b", "c"]));
        assert!(p.allows(&claims("snp", "affirming"), &["a", "b"]));
        assert!(!p.allows(&claims("sample", "warning"), &["a", "b", "c"]));
        assert!(!p.allows(&json!({}), &["a", "b", "c"]));
    }

    #[test]
    fn ordered_rules_from_toml() {
        let p = Policy::from_toml(
            r#"
            default = "deny"
            [[rules]]
            effect = "deny"
            resource = "default/keys/*"
            [[rules]]
            effect = "allow"
            tee = ["sample"]
            status = ["affirming", "warning"]
            "#,
        )
        .unwrap();
        let c = claims("sample", "warning");
        assert!(!p.allows(&c, &["default", "keys", "k1"]));
        assert!(p.allows(&c, &["default", "mysecret", "secret"]));
        assert!(
            p.allows(&c, &["default", "keys"]),
            "pattern needs 3 segments"
        );
        assert!(!p.allows(&claims("snp", "affirming"), &["default", "x", "y"]));
        assert!(!p.allows(&claims("sample", "contraindicated"), &["a", "b", "c"]));
        // "report_data" is not a TEE name even though it is a key of the annotated evidence.
        let q = Policy::from_toml("[[rules]]\neffect = \"allow\"\ntee = [\"sample\"]").unwrap();
        assert!(!q.allows(&claims("snp", "affirming"), &["a", "b", "c"]));
    }

    #[test]
    fn rejects_bad_files() {
        for bad in [
            "default = \"maybe\"",
            "[[rules]]\neffect = \"allow\"\ntee = [\"SNP\"]",
            "[[rules]]\neffect = \"allow\"\nstatus = [\"ok\"]",
            "[[rules]]\neffect = \"allow\"\nresource = \"a//c\"",
            "[[rules]]\neffect = \"allow\"\nresources = \"a/b/c\"",
            "[[rules]]\nresource = \"a/b/c\"",
        ] {
            assert!(Policy::from_toml(bad).is_err(), "{bad}");
        }
        assert_eq!(Policy::from_toml("").unwrap(), Policy::deny_all());
        assert_eq!(
            Policy::from_toml("default = \"allow\"").unwrap(),
            Policy::allow_all()
        );
    }
}

//! Company (tenant) identity: which bearer token speaks for which company. Ingest uses it to
//! decide whose vehicles a device may report; the live views and SQL use it to filter rows.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::TripRules;

/// One company as configured (`[[companies]]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyConfig {
    /// Stable id written into every record and row (`acme`).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Bearer tokens that speak for this company (ingest and query alike).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// This company's trip rules, when they differ from the defaults (`[companies.trips]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trips: Option<TripRules>,
}

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token: every company.
    Admin,
    /// One company's token.
    Company(Arc<str>),
}

impl Principal {
    /// Whether this principal may see or write `company`'s data.
    pub fn may_access(&self, company: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Company(own) => **own == *company,
        }
    }
}

/// A configuration error in the company list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenancyError {
    #[error("company id {0:?} is invalid: use 1-64 characters of [A-Za-z0-9_.-]")]
    BadCompanyId(String),
    #[error("company {0:?} is configured twice")]
    DuplicateCompany(String),
    #[error("a token is configured for more than one company (or equals the admin token)")]
    DuplicateToken,
    #[error("company {0:?} has an empty token")]
    EmptyToken(String),
}

/// The resolved company list: tokens to principals.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    by_token: HashMap<String, Principal>,
    companies: HashMap<Arc<str>, CompanyConfig>,
}

impl Tenants {
    pub fn new(
        companies: &[CompanyConfig],
        admin_token: Option<&str>,
    ) -> Result<Tenants, TenancyError> {
        let mut tenants = Tenants::default();
        if let Some(token) = admin_token {
            tenants.by_token.insert(token.to_owned(), Principal::Admin);
        }
        for company in companies {
            tenants.add_company(company.clone())?;
        }
        Ok(tenants)
    }

    /// Adds a company (one named as default in the config, say) unless it is already known.
    pub fn ensure_company(&mut self, id: &str) -> Result<(), TenancyError> {
        if self.companies.contains_key(id) {
            return Ok(());
        }
        self.add_company(CompanyConfig {
            id: id.to_owned(),
            name: id.to_owned(),
            tokens: Vec::new(),
            trips: None,
        })
    }

    fn add_company(&mut self, company: CompanyConfig) -> Result<(), TenancyError> {
        if !is_valid_company_id(&company.id) {
            return Err(TenancyError::BadCompanyId(company.id));
        }
        let id: Arc<str> = Arc::from(company.id.as_str());
        if self.companies.contains_key(&id) {
            return Err(TenancyError::DuplicateCompany(company.id));
        }
        for token in &company.tokens {
            if token.is_empty() {
                return Err(TenancyError::EmptyToken(company.id));
            }
            let previous = self
                .by_token
                .insert(token.clone(), Principal::Company(id.clone()));
            if previous.is_some() {
                return Err(TenancyError::DuplicateToken);
            }
        }
        self.companies.insert(id, company);
        Ok(())
    }

    /// The principal a bearer token speaks for, if any.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        self.by_token.get(token)
    }

    /// The interned id of a configured company.
    pub fn company(&self, id: &str) -> Option<Arc<str>> {
        self.companies.get_key_value(id).map(|(id, _)| id.clone())
    }

    pub fn companies(&self) -> impl Iterator<Item = &CompanyConfig> {
        self.companies.values()
    }

    /// The company a write by `who` is for (a webhook, a geofence): a company's token writes
    /// for its own company only; the admin must name one. The error (for a 400) names the
    /// `company` field.
    pub fn owner(&self, who: &Principal, named: Option<&str>) -> Result<Arc<str>, String> {
        match (who, named) {
            (Principal::Company(own), None) => Ok(own.clone()),
            (Principal::Company(own), Some(named)) if **own == *named => Ok(own.clone()),
            (Principal::Company(_), Some(_)) => {
                Err("company: a company's token writes for its own company only".to_owned())
            }
            (Principal::Admin, None) => {
                Err("company: the admin token must name the company".to_owned())
            }
            (Principal::Admin, Some(named)) => self
                .company(named)
                .ok_or_else(|| format!("company: no company {named:?}")),
        }
    }

    /// The principal of an `Authorization` header value, if it holds a known bearer token.
    pub fn principal(&self, authorization: Option<&str>) -> Option<&Principal> {
        authorization
            .and_then(bearer)
            .and_then(|t| self.authenticate(t))
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Company ids go into file paths and SQL filters: keep them plain.
pub fn is_valid_company_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str, tokens: &[&str]) -> CompanyConfig {
        CompanyConfig {
            id: id.into(),
            name: String::new(),
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            trips: None,
        }
    }

    #[test]
    fn tokens_resolve_to_their_company_and_admin_sees_all() {
        let tenants = Tenants::new(
            &[company("a", &["ta"]), company("b", &["tb1", "tb2"])],
            Some("root"),
        )
        .expect("valid");
        assert_eq!(
            tenants.authenticate("tb2"),
            Some(&Principal::Company("b".into()))
        );
        assert_eq!(tenants.authenticate("root"), Some(&Principal::Admin));
        assert_eq!(tenants.authenticate("nope"), None);
        assert!(Principal::Admin.may_access("a"));
        assert!(!Principal::Company("a".into()).may_access("b"));
    }

    #[test]
    fn rejects_shared_tokens_and_bad_ids() {
        assert_eq!(
            Tenants::new(&[company("a", &["t"]), company("b", &["t"])], None).err(),
            Some(TenancyError::DuplicateToken)
        );
        assert_eq!(
            Tenants::new(&[company("a", &["root"])], Some("root")).err(),
            Some(TenancyError::DuplicateToken)
        );
        assert!(matches!(
            Tenants::new(&[company("a/b", &[])], None),
            Err(TenancyError::BadCompanyId(_))
        ));
        assert!(matches!(
            Tenants::new(&[company("a", &[]), company("a", &[])], None),
            Err(TenancyError::DuplicateCompany(_))
        ));
    }
}

//! Client-certificate authenticator, as upstream's `authentication/request/x509`
//! with `CommonNameUserConversion`: user = subject CommonName, groups = subject
//! Organizations. The chain was already verified against `--client-ca-file` during
//! the TLS handshake (rustls `WebPkiClientVerifier`), so only the leaf is read here.

use rustls::pki_types::CertificateDer;

use super::UserInfo;

/// The identity in a verified client certificate chain, or `None` when there is no
/// certificate, it cannot be parsed, or its CommonName is empty (upstream then falls
/// through to the next authenticator).
pub fn user_from_chain(chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = chain.first()?;
    let (_, cert) = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::debug!(%err, "cannot parse client certificate");
            return None;
        }
    };
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_owned();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert(dn: &[(DnType, &str)]) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("sign").der().clone()
    }

    #[test]
    fn common_name_and_organizations() {
        // rcgen keeps one value per attribute type, so only one O here; the parser
        // collects every O entry.
        let c = cert(&[
            (DnType::CommonName, "system:node:n1"),
            (DnType::OrganizationName, "system:nodes"),
        ]);
        let user = user_from_chain(&[c]).expect("user");
        assert_eq!(user.name, "system:node:n1");
        assert_eq!(user.groups, vec!["system:nodes".to_string()]);
        let no_org = cert(&[(DnType::CommonName, "admin")]);
        assert_eq!(
            user_from_chain(&[no_org]).map(|u| u.groups),
            Some(Vec::new())
        );
    }

    #[test]
    fn no_common_name_or_garbage_is_no_user() {
        let c = cert(&[(DnType::OrganizationName, "devs")]);
        assert!(user_from_chain(&[c]).is_none());
        assert!(user_from_chain(&[CertificateDer::from(vec![1u8, 2, 3])]).is_none());
        assert!(user_from_chain(&[]).is_none());
    }
}

"""The passport in the citizen's wallet: an OpenID4VCI 1.0 credential issuer (pre-authorized
code flow with a transaction code), SD-JWT VC issuance with selective disclosure, and the
IETF Token Status List that revokes what it issued."""

"""A small login service: OpenID Connect sign-in through Authlib against a local
provider it starts itself, then the identity hooks (``user_registered``,
``user_logged_in``, ``profile_updated``) through hookruntime.

Run: ``cd examples && python -m sso_service`` (see the README).
"""

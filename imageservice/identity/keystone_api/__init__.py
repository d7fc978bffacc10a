"""The embedded Keystone v3 login calls (Local mode): discovery and ``/v3/auth/tokens``.

Enough of Keystone's Identity API v3 for keystoneauth, openstacksdk and python-openstackclient
to log in with a password or a token and find the image endpoint in the service catalog. The
tokens are the service's own hashed API tokens; see docs/identity.md.
"""

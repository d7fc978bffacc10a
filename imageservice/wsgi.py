import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imageservice.settings")

application = get_wsgi_application()

if settings.AUTH_STRATEGY == "keystone":
    # Only then: keystonemiddleware costs ~25 MiB and 0.2 s per process. Every API request's
    # token is validated by its auth_token first.
    from imageservice.identity import keystone_wsgi

    application = keystone_wsgi.wrap(application)

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imageservice.settings")

# Imported after Django is set up: it reads the settings.
from imageservice.identity import keystone_wsgi

# In Keystone mode, keystonemiddleware's auth_token validates every API request's token first.
application = keystone_wsgi.wrap(get_wsgi_application())

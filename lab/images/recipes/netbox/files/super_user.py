"""Create the superuser and its v1 API token from SUPERUSER_* once (the official image's super_user.py)."""

import os

from django.contrib.auth import get_user_model
from users.models import Token

name = os.environ.get("SUPERUSER_NAME", "admin")
User = get_user_model()
if User.objects.filter(username=name).exists():
    print(f"superuser {name} exists")
else:
    user = User.objects.create_superuser(name, os.environ.get("SUPERUSER_EMAIL", "admin@example.com"),
                                         os.environ.get("SUPERUSER_PASSWORD", "admin"))
    token = os.environ.get("SUPERUSER_API_TOKEN", "")
    if token:
        Token(user=user, version=1, token=token, description="SUPERUSER_API_TOKEN").save()
    print(f"created superuser {name}" + (" and its API token" if token else ""))

from django.db import models


class MySite(models.Model):
    """The model of django-cors-headers' README ("allow origins from a database")."""

    host = models.CharField(max_length=255, unique=True)

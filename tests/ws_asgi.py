"""The demo site under ASGI with a Django Channels echo socket at /ws/echo/ behind
``corsadmin.channels.OriginValidator`` (tests/test_channels.py serves it with uvicorn)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before the consumers are imported

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from corsadmin.channels import OriginValidator  # noqa: E402


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data)


application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": OriginValidator(URLRouter([path("ws/echo/", Echo.as_asgi())])),
    }
)

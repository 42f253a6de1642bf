"""corsadmin's admin: its ModelAdmins registered with the default admin site."""

from django.contrib import admin

from ..models import AllowedOrigin, LeaseToken, Policy, RefusedOrigin
from .filters import AllowedNowFilter, DismissedFilter, ExpiredFilter, PathFilter, UnusedFilter, allowed_now
from .forms import CheckForm, ExpiryForm, PolicyChoiceForm
from .leases import LeaseTokenAdmin
from .options import (
    AllowedOriginAdmin,
    AllowedOriginInline,
    HistoryValuesMixin,
    OneLockOrderMixin,
    OriginInlineFormSet,
    PolicyAdmin,
    RefusedOriginAdmin,
)

__all__ = [
    "AllowedNowFilter",
    "AllowedOriginAdmin",
    "AllowedOriginInline",
    "CheckForm",
    "DismissedFilter",
    "ExpiredFilter",
    "ExpiryForm",
    "HistoryValuesMixin",
    "LeaseTokenAdmin",
    "OneLockOrderMixin",
    "OriginInlineFormSet",
    "PathFilter",
    "PolicyAdmin",
    "PolicyChoiceForm",
    "RefusedOriginAdmin",
    "UnusedFilter",
    "allowed_now",
]

admin.site.register(Policy, PolicyAdmin)
admin.site.register(AllowedOrigin, AllowedOriginAdmin)
admin.site.register(RefusedOrigin, RefusedOriginAdmin)
admin.site.register(LeaseToken, LeaseTokenAdmin)

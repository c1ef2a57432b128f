from django.contrib import admin

from stats.models import CallRecord


@admin.register(CallRecord)
class CallRecordAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "direction",
        "caller",
        "callee",
        "disposition",
        "answered_at",
        "ended_at",
    )
    list_filter = ("direction", "disposition")
    search_fields = ("caller", "callee", "caller_name", "call_id")
    readonly_fields = [f.name for f in CallRecord._meta.fields]

    def has_add_permission(self, request) -> bool:  # records come from calls, not by hand
        return False

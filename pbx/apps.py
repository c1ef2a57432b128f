from django.apps import AppConfig


class PbxConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pbx"
    verbose_name = "PBX"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (bumps the configuration stamp on every change)

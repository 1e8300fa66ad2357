from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy.context import command_actor
from tenancy.models import ApiKey
from tenancy.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by id; it is refused from the next request on, on every worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_id", type=int)

    def handle(self, *args: Any, key_id: int, **options: Any) -> None:
        key = ApiKey.objects.filter(pk=key_id).first()
        if key is None:
            raise CommandError(f"API key #{key_id} does not exist.")
        if key.revoked_at is not None:
            raise CommandError(
                f"API key #{key_id} was already revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S}Z."
            )
        api_key_revoke(api_key=key, actor=command_actor())
        self.stdout.write(self.style.SUCCESS(f"Revoked API key #{key_id} {key.name!r}."))

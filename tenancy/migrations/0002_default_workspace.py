from django.db import migrations


def create_default(apps, schema_editor):
    Workspace = apps.get_model("tenancy", "Workspace")
    Workspace.objects.get_or_create(id="default", defaults={"name": "default"})


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]

from django.db import migrations


def create_defaults(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("corsadmin", "Policy").objects.using(db).get_or_create(name="default", defaults={"url_regex": "^/"})
    apps.get_model("corsadmin", "Generation").objects.using(db).get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("corsadmin", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]

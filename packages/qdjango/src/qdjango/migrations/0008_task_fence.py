from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("qdjango", "0007_task_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="fence",
            field=models.BigIntegerField(
                default=0,
                editable=False,
                help_text="The fencing token of the delivery that saved the row (0: none): a "
                "save of a superseded delivery, whose token is lower, never replaces it.",
            ),
        ),
    ]

"""The seven policies of SPEC.md ship as program templates with the SPEC's slugs (parameters: claims issue)."""

from django.db import migrations

TEMPLATES = [
    ("login-outage-2024", "ログイン障害期間の月額料金補償（2024年）"),
    ("coupon-outage-2023", "クーポン決済障害の補償（2023年2月24日）"),
    ("autorenew-60day", "自動更新の60日間返金保証"),
    ("cooling-off-7day", "7日以内の申込撤回（クーリングオフ）"),
    ("service-failure-prorata", "サービス提供不能時の日割り返金"),
    ("company-termination", "会員規約違反による解除時の返金"),
    ("overpayment", "二重請求・過払いの返金"),
]


def create_templates(apps, schema_editor):
    Program = apps.get_model("claims", "Program")
    for slug, name in TEMPLATES:
        Program.objects.get_or_create(slug=slug, defaults={"name": name, "policy": slug, "status": "draft"})


def remove_templates(apps, schema_editor):
    apps.get_model("claims", "Program").objects.filter(slug__in=[slug for slug, _ in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("claims", "0001_initial")]

    operations = [migrations.RunPython(create_templates, remove_templates)]

"""The guardrails' periodic task (docs/experiments.md, "Guardrails")."""

from celery import shared_task

from .services import guardrails_evaluate


@shared_task(name="apps.experiments.tasks.evaluate_guardrails", ignore_result=True)
def evaluate_guardrails() -> list[int]:
    """Every EXPERIMENT_GUARDRAIL_SECONDS (CELERY_BEAT_SCHEDULE): every running experiment's
    guardrails; those that trip are rolled back. Returns the ids rolled back."""
    return guardrails_evaluate()

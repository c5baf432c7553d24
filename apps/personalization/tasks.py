"""The personalisation app's periodic task (docs/personalization.md, "Training")."""

from celery import shared_task

from .services import models_train


@shared_task(name="apps.personalization.tasks.train", ignore_result=True)
def train(now=None) -> dict:
    """Every PERSONALIZATION_TRAIN_INTERVAL_SECONDS (CELERY_BEAT_SCHEDULE): retrain each shop
    with orders past its model, or whose model is PERSONALIZATION_MAX_AGE_HOURS old."""
    return models_train(now=now)

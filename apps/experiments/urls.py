from django.urls import path

from . import api

urlpatterns = [
    path("client-events/", api.ClientEventsView.as_view(), name="api-client-events"),
    path("experiments/", api.ExperimentsView.as_view(), name="api-experiments"),
    path("experiments/<int:pk>/results/", api.ExperimentResultsView.as_view(), name="api-experiment-results"),
    *(
        path(
            f"experiments/<int:pk>/{verb}",
            api.ExperimentActionView.as_view(verb=verb),
            name=f"api-experiment-{verb}",
        )
        for verb in ("start", "pause", "resume", "stop")
    ),
]

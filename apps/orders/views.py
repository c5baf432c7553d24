"""HTML pages of the buyer's own orders: "My orders" and one order with its receipt."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .selectors import offline_body, order_of_buyer, orders_of_buyer

ORDERS_PER_PAGE = 20


@require_safe
@login_required
def my_orders(request):
    page = Paginator(orders_of_buyer(buyer=request.user), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orders/list.html", {"page": page, "orders": page.object_list})


@require_safe
@login_required
def my_order(request, pk: int):
    order = order_of_buyer(buyer=request.user, order_id=pk)
    if order is None:  # someone else's, or none: the same answer, so ids reveal nothing
        raise Http404("No such order.")
    return render(
        request,
        "orders/detail.html",
        {
            "order": order,
            "lines": list(order.lines.all()),
            # Accepted offline by an edge node: where its payment is (docs/buying.md, "Offline selling").
            "offline": offline_body(order) if order.offline_accepted_at else None,
            "jwks_url": request.build_absolute_uri("/.well-known/jwks.json"),
        },
    )

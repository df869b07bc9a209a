"""Billing (Heliomare invoices WerkSaam, agreement art 7; Bijlage 2 steps 5 and 8).

WerkSaam pays per trajectory the amount of the approved custom quote, invoiced in advance and/or
afterwards, wholly or in parts, as the quote's invoicing schedule says (art 7.1, 7.2):

- at the start (`trajectory.started`): the sum of the schedule's ADVANCE tranches;
- at the end (`trajectory.ended`): the sum of its AFTERWARDS tranches, or, for a trajectory stopped
  early, the settlement below.

Each is first an invoice order (facturatieopdracht), registered, then an invoice with a number that is
unique and gap-free per year (`InvoiceCounter`, changed in the same transaction as the invoice, so a
number is used exactly when an invoice is made), its date, the amount excluding VAT, the VAT, the total,
and references to the quote and the trajectory.

Early-stop settlement rule (also in the README): the advance part stands; the afterwards part is paid
pro rata to the share of the planned duration that actually ran,
``afterwards x min(1, days from start to end / (planned weeks x 7))``, rounded half up to the cent,
and never more than the afterwards part nor, with the advance, more than the approved amount.

Events arrive on separate queues, so in any order: the account records what it learns (the approved
quote, the start, the end) and draws up an order once everything that order needs is known. Facts that
contradict earlier ones are refused with a reason code; the same fact again changes nothing, so a
duplicate never creates a second invoice nor uses a number.

Invariants: the sum of the orders (and so of the invoices) of a trajectory never exceeds the approved
amount; one order per moment per trajectory; every order has exactly one invoice.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.events import (
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    InvoiceTranche,
    Outcome,
    TrajectoryCommissioned,
    TrajectoryEnded,
    TrajectoryStarted,
    vat_of,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate, NotYet, Withholding
from shared.privacy.grounds import FISCAL_ADMINISTRATION

BILLING_NAMESPACE = uuid.UUID("5d0c8b1a-2f7e-4c39-9a61-62696c6c696e")
CENT = Decimal("0.01")


def early_stop_settlement(afterwards: Decimal, start: date, end: date, duration_weeks: int) -> Decimal:
    """The afterwards part of a trajectory stopped early: pro rata to the planned duration that ran."""
    ran = max(0, (end - start).days)
    share = min(Decimal(1), Decimal(ran) / Decimal(duration_weeks * 7))
    return min(afterwards, (afterwards * share).quantize(CENT, rounding=ROUND_HALF_UP))


class Commission(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quote_id: uuid.UUID
    approved_amount: Decimal
    duration_weeks: int
    invoicing: list[InvoiceTranche]
    # The commissioner the invoices are addressed to. A commission recorded before messages were addressed
    # (issue 18) was the founding commissioner's.
    commissioner: str = Party.WERKSAAM

    def scheduled(self, moment: InvoiceMoment) -> Decimal:
        return sum((t.amount for t in self.invoicing if t.moment == moment), Decimal(0))


class Start(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trajectory_id: uuid.UUID
    quote_id: uuid.UUID
    start_date: date


class End(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trajectory_id: uuid.UUID
    end_date: date
    outcome: Outcome


class InvoiceOrder(BaseModel):
    """A facturatieopdracht: what is to be invoiced, registered before the invoice is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: uuid.UUID
    moment: InvoiceMoment
    basis: InvoiceBasis
    amount: Decimal
    due_on: date  # the start (advance) or the end (afterwards): the invoice's date
    invoice_id: uuid.UUID | None = None


class Invoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: uuid.UUID
    order_id: uuid.UUID
    number: str
    invoice_date: date
    moment: InvoiceMoment
    basis: InvoiceBasis
    amount_excl_vat: Decimal
    vat_rate: Decimal
    vat_amount: Decimal
    total: Decimal


class InvoiceCounter(Aggregate):
    """The last invoice number used in a year. Updated in the invoice's own transaction: gap-free."""

    year: int
    last: int = 0

    @staticmethod
    def id_for(year: int) -> uuid.UUID:
        return uuid.uuid5(BILLING_NAMESPACE, f"invoice-counter:{year}")

    @classmethod
    def for_year(cls, year: int) -> InvoiceCounter:
        return cls(id=cls.id_for(year), year=year)

    def take(self) -> str:
        self.last += 1
        return f"{self.year:04d}-{self.last:06d}"


class AccountStatus(StrEnum):
    """Where billing's account of a referral stands. Each step's invoices are issued in the same transaction
    that records it: an account `running` has its advance invoice, one `ended` every invoice due."""

    AWAITING_COMMISSION = "awaiting_commission"
    COMMISSIONED = "commissioned"
    RUNNING = "running"
    ENDED = "ended"


class Account(Aggregate):
    """Billing's record of one referral's trajectory; its id is the referral id."""

    subject: str
    commission: Commission | None = None
    start: Start | None = None
    end: End | None = None
    orders: list[InvoiceOrder] = Field(default_factory=list)
    invoices: list[Invoice] = Field(default_factory=list)

    @classmethod
    def open(cls, referral_id: uuid.UUID, subject: str) -> Account:
        return cls(id=referral_id, subject=subject)

    # -- what arrives (any order) ------------------------------------------------------------------

    def retention_start(self) -> date | None:
        """The account is closed when the trajectory ended and every invoice order was invoiced."""
        if self.end is None or self.pending_orders():
            return None
        return max([self.end.end_date, *(i.invoice_date for i in self.invoices)])

    def withholding(self) -> Withholding | None:
        """Invoices and the administration behind them must be kept for the tax authorities."""
        if not self.invoices:
            return None
        return FISCAL_ADMINISTRATION.withholding(self.retention_start() or max(i.invoice_date for i in self.invoices))

    def commissioned(self, event: TrajectoryCommissioned) -> None:
        commission = Commission(quote_id=event.quote_id, approved_amount=event.approved_amount,
                                duration_weeks=event.duration_weeks, invoicing=list(event.invoicing),
                                commissioner=event.commissioner)
        if self.commission is not None:
            if self.commission != commission:
                raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="another approved quote"))
            return
        if self.start is not None and self.start.quote_id != event.quote_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_QUOTE, detail="the trajectory started on another quote"))
        self.commission = commission

    def started(self, event: TrajectoryStarted) -> None:
        """Follows the commission (offer's trajectory.commissioned, on another queue: NotYet until it came)."""
        start = Start(trajectory_id=event.trajectory_id, quote_id=event.quote_id, start_date=event.start_date)
        if self.start is not None:
            if self.start != start:
                raise Refusal(ReasonCode.TRAJECTORY_ALREADY_STARTED)
            return
        if self.commission is None:
            raise NotYet(Reason(code=ReasonCode.NO_APPROVED_QUOTE, detail="the trajectory follows its commission"))
        if self.commission.quote_id != event.quote_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_QUOTE, detail="not the approved quote"))
        if self.end is not None:
            self._consistent(start, self.end)
        self.start = start

    def ended(self, event: TrajectoryEnded) -> None:
        """Follows the start, under its trajectory id: before the start NotYet, another id refused at once."""
        end = End(trajectory_id=event.trajectory_id, end_date=event.end_date, outcome=event.outcome)
        if self.end is not None:
            if self.end != end:
                raise Refusal(ReasonCode.TRAJECTORY_ENDED)
            return
        if self.start is None:
            raise NotYet(Reason(code=ReasonCode.TRAJECTORY_NOT_STARTED, field="data.trajectory_id"))
        self._consistent(self.start, end)
        self.end = end

    @staticmethod
    def _consistent(start: Start, end: End) -> None:
        if start.trajectory_id != end.trajectory_id:
            raise Refusal(ReasonCode.UNKNOWN_TRAJECTORY)
        if end.end_date < start.start_date:
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_START, field="data.end_date"))

    # -- invoice orders ----------------------------------------------------------------------------

    def draw_up_orders(self) -> list[InvoiceOrder]:
        """Register the invoice orders that are due and not yet registered; return them."""
        c, new = self.commission, []
        if c is None or self.start is None:
            return new
        if not self._order(InvoiceMoment.ADVANCE) and (amount := c.scheduled(InvoiceMoment.ADVANCE)) > 0:
            new.append(self.register_order(InvoiceMoment.ADVANCE, InvoiceBasis.SCHEDULE, amount,
                                           self.start.start_date))
        if self.end is not None and not self._order(InvoiceMoment.AFTERWARDS):
            afterwards, basis = c.scheduled(InvoiceMoment.AFTERWARDS), InvoiceBasis.SCHEDULE
            if self.end.outcome == Outcome.STOPPED_EARLY:
                afterwards = early_stop_settlement(afterwards, self.start.start_date, self.end.end_date,
                                                   c.duration_weeks)
                basis = InvoiceBasis.EARLY_STOP
            if afterwards > 0:
                new.append(self.register_order(InvoiceMoment.AFTERWARDS, basis, afterwards, self.end.end_date))
        return new

    def register_order(self, moment: InvoiceMoment, basis: InvoiceBasis, amount: Decimal, due_on: date) -> InvoiceOrder:
        """Register an invoice order. Refused when it is not a positive amount in cents, when the moment
        is ordered already, or when the orders would exceed the approved amount (art 7.2)."""
        if self.commission is None:
            raise Refusal(ReasonCode.NO_APPROVED_QUOTE)
        if amount <= 0 or amount != amount.quantize(CENT):
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="amount", detail="positive euros in cents"))
        if self._order(moment):
            raise Refusal(Reason(code=ReasonCode.DUPLICATE_INVOICE, detail=f"{moment} already ordered"))
        if self.ordered_total() + amount > self.commission.approved_amount:
            raise Refusal(ReasonCode.INVOICE_EXCEEDS_APPROVED)
        order = InvoiceOrder(order_id=uuid.uuid5(BILLING_NAMESPACE, f"order:{self.id}:{moment}"), moment=moment,
                             basis=basis, amount=amount, due_on=due_on)
        self.orders = [*self.orders, order]
        return order

    def pending_orders(self) -> list[InvoiceOrder]:
        return [o for o in self.orders if o.invoice_id is None]

    # -- invoices ------------------------------------------------------------------------------------

    def issue(self, order: InvoiceOrder, number: str, vat_rate: Decimal) -> Invoice:
        """Make the invoice of a registered order, with the number the year's counter gave."""
        assert self.commission is not None and self.start is not None
        if order not in self.orders or order.invoice_id is not None:
            raise Refusal(Reason(code=ReasonCode.DUPLICATE_INVOICE, detail="order is invoiced already"))
        if self.invoiced_total() + order.amount > self.commission.approved_amount:
            raise Refusal(ReasonCode.INVOICE_EXCEEDS_APPROVED)
        vat = vat_of(order.amount, vat_rate)
        invoice = Invoice(invoice_id=uuid.uuid5(BILLING_NAMESPACE, f"invoice:{order.order_id}"),
                          order_id=order.order_id, number=number, invoice_date=order.due_on, moment=order.moment,
                          basis=order.basis, amount_excl_vat=order.amount, vat_rate=vat_rate, vat_amount=vat,
                          total=order.amount + vat)
        self.orders = [o.model_copy(update={"invoice_id": invoice.invoice_id}) if o == order else o
                       for o in self.orders]
        self.invoices = [*self.invoices, invoice]
        self.emit(InvoiceIssued(referral_id=self.id, trajectory_id=self.start.trajectory_id,
                                quote_id=self.commission.quote_id, invoice_id=invoice.invoice_id,
                                invoice_number=number, invoice_date=invoice.invoice_date, moment=invoice.moment,
                                basis=invoice.basis, amount_excl_vat=invoice.amount_excl_vat, vat_rate=vat_rate,
                                vat_amount=vat, total=invoice.total), subject=self.subject,
                  to=self.commission.commissioner)
        return invoice

    def ordered_total(self) -> Decimal:
        return sum((o.amount for o in self.orders), Decimal(0))

    def invoiced_total(self) -> Decimal:
        return sum((i.amount_excl_vat for i in self.invoices), Decimal(0))

    def _order(self, moment: InvoiceMoment) -> InvoiceOrder | None:
        return next((o for o in self.orders if o.moment == moment), None)

    @property
    def status(self) -> AccountStatus:
        """Where the account stands: waiting for the approved quote, commissioned, running, ended
        (orders for what is due are drawn up and invoiced as soon as it is known)."""
        if self.commission is None:
            return AccountStatus.AWAITING_COMMISSION
        if self.start is None:
            return AccountStatus.COMMISSIONED
        return AccountStatus.RUNNING if self.end is None else AccountStatus.ENDED

    def view(self) -> dict:
        return {
            "referral_id": str(self.id),
            "subject": self.subject,
            "status": self.status,
            "quote_id": str(self.commission.quote_id) if self.commission else None,
            "approved_amount": str(self.commission.approved_amount) if self.commission else None,
            "trajectory_id": str(self.start.trajectory_id) if self.start else None,
            "outcome": self.end.outcome.value if self.end else None,
            "orders": [o.model_dump(mode="json") for o in self.orders],
            "invoices": [i.model_dump(mode="json") for i in self.invoices],
            "invoiced_total": str(self.invoiced_total()),
        }

"""command_status names and meanings people read in errors, standard and Infobip."""

from __future__ import annotations

import o2sms.smpp
from o2sms.smpp import (
    CommandStatus,
    describe_status,
    is_receipt,
    status_meaning,
    status_name,
)


def test_every_named_status_has_a_meaning() -> None:
    for status in CommandStatus:
        assert status_meaning(status), status.name


def test_spec_values_of_well_known_codes() -> None:
    # SMPP 3.4 section 5.1.3, as listed in the reference's section 2.
    assert int(CommandStatus.ESME_RINVCMDLEN) == 0x02
    assert int(CommandStatus.ESME_RTHROTTLED) == 0x58
    assert int(CommandStatus.ESME_RMSGQFUL) == 0x14
    assert int(CommandStatus.ESME_RINVOPTPARSTREAM) == 0xC0
    assert int(CommandStatus.ESME_RX_T_APPN) == 0x64


def test_describe_status_reads_well() -> None:
    assert describe_status(0x58) == (
        "ESME_RTHROTTLED (0x00000058): throttling error (the ESME exceeded its allowed message rate)"
    )


def test_infobip_meanings_override_when_asked() -> None:
    assert status_meaning(0xFF) == "unknown error"
    assert status_meaning(0xFF, infobip=True) == "insufficient account balance"
    assert status_meaning(0x22, infobip=True) == "network not covered"
    assert status_meaning(0x4A1, infobip=True) == "system error or channel disabled"
    assert status_meaning(0x9F, infobip=True) == "invalid optional parameter length"
    assert status_meaning(0x0C, infobip=True) == "duplicate message ID"


def test_codes_without_a_name() -> None:
    assert status_name(0x4A1) == "VENDOR_0x000004A1"
    assert status_name(0x22) == "UNKNOWN_0x00000022"
    assert status_meaning(0x4A1) == "SMSC vendor-specific error"
    assert "0x00000022" in describe_status(0x22)


def test_receipt_detection_ignores_udhi() -> None:
    assert is_receipt(0x04)
    assert is_receipt(0x44)  # receipt with UDHI set
    assert is_receipt(0x20)  # intermediate notification
    assert not is_receipt(0x00)
    assert not is_receipt(0x40)


def test_public_names_are_sorted_and_importable() -> None:
    names = o2sms.smpp.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(o2sms.smpp, name), name

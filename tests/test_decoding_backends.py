"""Every decoding backend zoo ships implements the contract the engine drives
(``zoo.decoding.backends``): checked on the classes, so a backend that loses or renames
a method fails here rather than in the middle of a beam search."""

import inspect

import pytest

from zoo.decoding.backends import LanguageModelBackend, TranslatorBackend
from zoo.decoding.keras_backend import KerasLanguageModel, KerasTranslator
from zoo.export.litert import LiteRTLanguageModel, LiteRTTranslator
from zoo.export.saved_model import SavedModelLanguageModel, SavedModelTranslator

BACKENDS = [
    (KerasLanguageModel, LanguageModelBackend),
    (SavedModelLanguageModel, LanguageModelBackend),
    (LiteRTLanguageModel, LanguageModelBackend),
    (KerasTranslator, TranslatorBackend),
    (SavedModelTranslator, TranslatorBackend),
    (LiteRTTranslator, TranslatorBackend),
]


def contract_methods(protocol):
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(("backend", "protocol"), BACKENDS, ids=lambda item: item.__name__)
def test_backend_implements_its_contract(backend, protocol):
    for name, signature in contract_methods(protocol).items():
        method = getattr(backend, name, None)
        assert callable(method), f"{backend.__name__} has no {name}"
        parameters = list(inspect.signature(method).parameters)
        assert parameters == list(signature.parameters), (
            f"{backend.__name__}.{name}{inspect.signature(method)}: the contract is "
            f"{name}{signature}"
        )
    if protocol is TranslatorBackend:
        assert isinstance(backend.preferred_batch, int) and backend.preferred_batch >= 1


def test_the_contracts_name_what_the_engine_calls():
    assert set(contract_methods(LanguageModelBackend)) == {"initial_states", "step"}
    assert set(contract_methods(TranslatorBackend)) == {"encode", "decode_step"}

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from engine.proxy import PLACEHOLDER_TOKEN, ProxyInstruction, initial_proxy_tokens


K = 4


@pytest.fixture
def llava(tiny_model_factory):
    folder = tiny_model_factory("llava")
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.add_tokens([PLACEHOLDER_TOKEN], special_tokens=True)
    return model, processor


def make_proxy(model, processor, seed=0):
    placeholder_id = processor.tokenizer.convert_tokens_to_ids(PLACEHOLDER_TOKEN)
    hidden = model.get_input_embeddings().weight.shape[1]
    tokens = torch.randn(K, hidden, generator=torch.Generator().manual_seed(seed))
    return ProxyInstruction(tokens, placeholder_id=placeholder_id, substitute_id=processor.tokenizer.pad_token_id)


def test_placeholder_may_lie_outside_embedding_table(llava):
    model, processor = llava
    proxy = make_proxy(model, processor)
    assert proxy.placeholder_id >= model.get_input_embeddings().num_embeddings


def test_hook_replaces_only_placeholder_rows(llava):
    model, processor = llava
    proxy = make_proxy(model, processor)
    embedding = model.get_input_embeddings()
    text_ids = processor.tokenizer("the cell is round", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([text_ids[:2] + [proxy.placeholder_id] * K + text_ids[2:]])
    mask = ids == proxy.placeholder_id

    with torch.no_grad():
        expected = embedding(ids.masked_fill(mask, proxy.substitute_id))
        proxy.attach(embedding)
        hooked = embedding(ids)
        proxy.detach()

    assert torch.equal(hooked[~mask], expected[~mask])
    assert torch.equal(hooked[mask], proxy.tokens.detach())


def test_wrong_placeholder_count_rejected(llava):
    model, processor = llava
    proxy = make_proxy(model, processor)
    embedding = model.get_input_embeddings()
    proxy.attach(embedding)
    ids = torch.tensor([[5, proxy.placeholder_id, 6]])
    with pytest.raises(ValueError, match=f"exactly {K} proxy placeholders, found counts \\[1\\]"):
        embedding(ids)
    proxy.detach()


def test_no_effect_after_detach(llava):
    model, processor = llava
    ids = torch.tensor([processor.tokenizer("what is the cell shape", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        reference = model(input_ids=ids).logits

        proxy = make_proxy(model, processor)
        proxy.attach(model.get_input_embeddings())
        attached_without_placeholders = model(input_ids=ids).logits
        proxy.detach()
        detached = model(input_ids=ids).logits

    assert torch.equal(attached_without_placeholders, reference)
    assert torch.equal(detached, reference)
    assert not proxy.attached


def test_gradient_reaches_proxy_through_bf16_model(llava):
    model, processor = llava
    model.to(torch.bfloat16)
    proxy = make_proxy(model, processor)
    model.proxy_instruction = proxy
    model.to(torch.bfloat16)
    assert proxy.tokens.dtype == torch.float32
    assert proxy.average.dtype == torch.float32

    proxy.attach(model.get_input_embeddings())
    text_ids = processor.tokenizer("round cell", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[proxy.placeholder_id] * K + text_ids])
    logits = model(input_ids=ids).logits
    logits.float().sum().backward()
    proxy.detach()

    assert proxy.tokens.grad is not None
    assert proxy.tokens.grad.dtype == torch.float32
    assert proxy.tokens.grad.abs().sum() > 0


def test_momentum_update_matches_hand_computation():
    average = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    trained = torch.tensor([[3.0, 0.0], [0.5, -4.0]])
    proxy = ProxyInstruction(average, placeholder_id=0)
    proxy.tokens.data.copy_(trained)

    proxy.update_average(0.9)

    expected = 0.9 * average.double() + 0.1 * trained.double()
    assert torch.allclose(proxy.average.double(), expected, atol=1e-7)
    assert torch.equal(proxy.tokens.data, trained)


def test_small_momentum_step_survives_in_fp32():
    # With m = 0.999, t̄ moves by 0.1% of (t − t̄); bf16 rounds 1.001 back to 1.
    proxy = ProxyInstruction(torch.ones(1, 4), placeholder_id=0)
    proxy.to(torch.bfloat16)
    proxy.tokens.data.fill_(2.0)
    proxy.update_average(0.999)

    assert torch.allclose(proxy.average, torch.full((1, 4), 1.001), atol=1e-6)
    assert torch.equal(torch.tensor(1.001).to(torch.bfloat16).float(), torch.tensor(1.0))


def test_load_and_reset_average_copy_not_alias():
    proxy = ProxyInstruction(torch.zeros(2, 3), placeholder_id=0)
    proxy.tokens.data.fill_(1.0)
    proxy.reset_average()
    proxy.tokens.data.fill_(5.0)
    assert torch.equal(proxy.average, torch.ones(2, 3))

    proxy.load_average()
    assert torch.equal(proxy.tokens.data, torch.ones(2, 3))
    proxy.average.fill_(7.0)
    assert torch.equal(proxy.tokens.data, torch.ones(2, 3))


def test_text_init_repeats_instruction_to_k(llava):
    model, processor = llava
    tokenizer = processor.tokenizer
    embedding = model.get_input_embeddings()
    ids = tokenizer("Describe the image.", add_special_tokens=False)["input_ids"]
    tokens = initial_proxy_tokens(embedding, tokenizer, len(ids) + 2, "text", "Describe the image.")

    assert tokens.dtype == torch.float32
    assert tokens.shape == (len(ids) + 2, embedding.weight.shape[1])
    with torch.no_grad():
        expected = embedding(torch.tensor([ids]))[0]
    assert torch.equal(tokens[: len(ids)], expected)
    assert torch.equal(tokens[len(ids) :], expected[:2])


def test_text_init_rejects_empty_text(llava):
    model, processor = llava
    with pytest.raises(ValueError, match="produced no tokens"):
        initial_proxy_tokens(model.get_input_embeddings(), processor.tokenizer, 8, "text", "")

"""Write notebooks/08_ai_scientist.ipynb and execute it to store its outputs (docs/ai-scientist.md's notebook).

    PYTHONPATH=$PWD python scripts/make_ai_scientist_notebook.py

The notebook reproduces AI-Scientist-v2's call patterns (``create_client``, an unbounded
``backoff`` around the SDK call, ``OmegaConf.save`` of a run config) with the same libraries,
against sci_ext's demo LLM server; AI-Scientist's own code is not copied.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

IGNORE = {"tags": ["nbval-ignore-output"]}
OUT = Path(__file__).resolve().parents[1] / "notebooks" / "08_ai_scientist.ipynb"

cells = [
    new_markdown_cell(
        "# sci_ext with AI-Scientist-v2\n\n"
        "AI-Scientist-v2 makes its LLM calls through the official `openai` and `anthropic` SDKs: "
        "`anthropic.AnthropicBedrock` for the tree-search coder, `openai.OpenAI` for feedback and "
        "writing, each wrapped in an unbounded `backoff` retry loop. This notebook runs those patterns "
        "unchanged against sci_ext's demo LLM server (`sci_ext.testing.FakeLLMServer`, a local "
        "stand-in for the APIs that answers with fixed token counts), so every number below is "
        "reproducible. The guide: [docs/ai-scientist.md](../docs/ai-scientist.md)."
    ),
    new_code_cell("%load_ext sci_ext\n%sci_config llm.notify_cost_usd=none"),
    new_markdown_cell(
        "The demo server stands in for OpenAI, Anthropic and Bedrock. The environment is what an "
        "AI-Scientist run has: API keys, AWS credentials and region (here fake), and base URLs "
        "(here the demo server's)."
    ),
    new_code_cell(
        "import os\n"
        "from sci_ext.testing import FakeLLMServer\n\n"
        "server = FakeLLMServer().start()\n"
        "server.served['gpt-4o-mini'] = 'gpt-4o-mini-2024-07-18'  # the real API answers with a dated model\n"
        "os.environ.update(\n"
        "    OPENAI_API_KEY='sk-demo', OPENAI_BASE_URL=server.openai_url,\n"
        "    ANTHROPIC_API_KEY='sk-ant-demo', ANTHROPIC_BASE_URL=server.anthropic_url,\n"
        "    AWS_ACCESS_KEY_ID='AKIADEMO', AWS_SECRET_ACCESS_KEY='demo', AWS_REGION='us-east-1',\n"
        "    ANTHROPIC_BEDROCK_BASE_URL=server.bedrock_url,\n"
        ")"
    ),
    new_markdown_cell(
        "## Their functions, unchanged\n\n"
        "Written the way AI-Scientist writes them: a `create_client` that picks the SDK client from the "
        "model name, and a response function retried by `@backoff.on_exception(backoff.expo, ...)` with "
        "no limit, over the SDK's own 2 retries."
    ),
    new_code_cell(
        "import anthropic, backoff, openai\n\n"
        "def create_client(model):\n"
        "    if model.startswith('bedrock') and 'claude' in model:\n"
        "        return anthropic.AnthropicBedrock(), model.split('/')[-1]\n"
        "    if model.startswith('claude-'):\n"
        "        return anthropic.Anthropic(), model\n"
        "    return openai.OpenAI(), model\n\n"
        "@backoff.on_exception(backoff.expo, (openai.RateLimitError, openai.APITimeoutError,\n"
        "                                     openai.InternalServerError, anthropic.RateLimitError))\n"
        "def get_response(prompt, client, model):\n"
        "    if 'claude' in model:\n"
        "        reply = client.messages.create(model=model, max_tokens=100,\n"
        "                                       messages=[{'role': 'user', 'content': prompt}])\n"
        "        return reply.content[0].text\n"
        "    reply = client.chat.completions.create(model=model, messages=[{'role': 'user', 'content': prompt}])\n"
        "    return reply.choices[0].message.content"
    ),
    new_markdown_cell(
        "## Every provider priced\n\n"
        "The Bedrock call is recorded under `aws`, the provider that bills it, and priced from its "
        "prices; the OpenAI call keeps both the model asked for and the model that answered."
    ),
    new_code_cell(
        "from sci_ext.core.llm import get_llm_usage\n\n"
        "coder, coder_model = create_client('bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0')\n"
        "writer, writer_model = create_client('gpt-4o-mini')\n"
        "print(get_response('Write the training loop.', coder, coder_model))\n"
        "print(get_response('Summarize the result.', writer, writer_model))\n"
        "for row in get_llm_usage()['models']:\n"
        "    print(row['provider'], row['model'], 'asked:', ', '.join(row['requested']) or '-', '| input', row['input'],\n"
        "          'output', row['output'], '| cost', f\"${row['cost_usd']:.6f}\")"
    ),
    new_markdown_cell(
        "`%sci_llm` shows the same per model, with the HTTP attempts of each call "
        "(`--model gpt-4o-mini` finds the dated model too). Latencies change from run to run."
    ),
    new_code_cell("%sci_llm --model gpt-4o-mini", metadata=IGNORE),
    new_markdown_cell(
        "## A budget per idea\n\n"
        "A named budget is shared by every kernel and script on the machine; once spent, the next call "
        "is refused **before it is sent**, with a message that says how to raise it where it runs."
    ),
    new_code_cell(
        "from sci_ext.core.llm import budgets, settings\n"
        "%sci_config llm.budgets=idea-7=0.01\n"
        "budgets.reset(settings.current(), 'idea-7')  # start this demo's idea at $0\n\n"
        "sent = 0\n"
        "try:\n"
        "    while True:\n"
        "        get_response('Try another ablation.', coder, coder_model)\n"
        "        sent += 1\n"
        "except budgets.BudgetExceeded as err:\n"
        "    print(f'{sent} calls sent, then:', type(err).__name__, '-', err.budget)\n"
        "    print(str(err).split('; ')[1])"
    ),
    new_code_cell("%sci_config llm.budgets=\nprint('budget off')"),
    new_markdown_cell(
        "## The retry budget under their unbounded loop\n\n"
        "The server now answers 429 to everything. `get_response` would retry forever; sci_ext counts "
        "every attempt (the SDK's retries and the `backoff` loop's together) and refuses the attempt "
        "past `llm.max_attempts` with `RetryBoundReached`, which is not an SDK error, so `backoff` "
        "lets it through."
    ),
    new_code_cell(
        "from sci_ext.core.llm.attempts import RetryBoundReached\n"
        "%sci_config llm.max_attempts=4\n\n"
        "server.fail_always = 429\n"
        "try:\n"
        "    get_response('Summarize the result.', writer, writer_model)\n"
        "except RetryBoundReached as exc:\n"
        "    err = exc\n"
        "    print(type(err).__name__, '|', err.bound, '|', err.attempts, 'attempts |',\n"
        "          'backoff caught it:', isinstance(err, openai.RateLimitError))\n"
        "server.fail_always = 0\n"
        "total = get_llm_usage(model='gpt-4o-mini')['total']\n"
        "print('gpt-4o-mini:', total['calls'], 'calls,', total['attempts'], 'attempts,',\n"
        "      total['rate_limited'], 'rate-limited,', total['refused'], 'refused')"
    ),
    new_markdown_cell("The whole message says how to change the bound (here, in a kernel, with the magic):"),
    new_code_cell("print(err)", metadata=IGNORE),
    new_markdown_cell(
        "## Their saved run configs migrate\n\n"
        "AI-Scientist saves each run's merged config with `OmegaConf.save`: paths as "
        "`!!python/object/apply:pathlib.PosixPath` tags, `???` for missing values, interpolations as text. "
        "`jupyter sci config migrate` (here its library call) reads it as `OmegaConf.load` does."
    ),
    new_code_cell(
        "import tempfile\n"
        "from pathlib import Path\n"
        "from omegaconf import OmegaConf\n"
        "from sci_ext.core.config.migrate import migrate\n\n"
        "run_dir = Path(tempfile.mkdtemp())\n"
        "OmegaConf.save(OmegaConf.create({\n"
        "    'log_dir': Path('/runs/logs/0-idea-7'), 'exp_name': '???',\n"
        "    'agent': {'steps': 20, 'code': {'model': coder_model, 'temp': 1.0}},\n"
        "    'report': {'model': '${agent.code.model}'},\n"
        "}), run_dir / 'config.yaml')\n"
        "print((run_dir / 'config.yaml').read_text())\n"
        "print(migrate(run_dir / 'config.yaml', target=run_dir / 'sci_ext.toml').summary())"
    ),
    new_markdown_cell(
        "## A cell that makes the client can be cached\n\n"
        "The client is stored as its settings (class, base URL, timeouts, retries, region), never "
        "pickled and never with a credential, and rebuilt on a hit with the credentials of the "
        "environment."
    ),
    new_code_cell(
        "%%cached --force make_clients\n"
        "coder, coder_model = create_client('bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0')",
        metadata=IGNORE,
    ),
    new_code_cell(
        "%%cached make_clients\n"
        "coder, coder_model = create_client('bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0')",
        metadata=IGNORE,
    ),
    new_code_cell(
        "print(type(coder).__name__, coder.aws_region, coder_model)\n"
        "print(get_response('Write the training loop.', coder, coder_model))\n"
        "server.stop()"
    ),
]

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(OUT.parent)}}).execute()
nbformat.write(nb, OUT)
print(f"wrote {OUT}")

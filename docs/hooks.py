"""MkDocs hook (mkdocs.yml ``hooks:``): docstring examples (``>>>`` lines and their output)
become ``pycon`` code blocks, so Markdown does not read ``['a', 'b']`` as a link."""

from markdown import Extension
from markdown.preprocessors import Preprocessor


class _DoctestBlocks(Preprocessor):
    def run(self, lines):
        out, i, fenced = [], 0, False
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            if fenced or not line.lstrip().startswith(">>>"):
                out.append(line)
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][indent:] if lines[i][:indent].isspace() or not indent
                             else lines[i].lstrip())
                i += 1
            out += ["", "```pycon", *block, "```", ""]
        return out


class DoctestBlocks(Extension):
    def extendMarkdown(self, md):
        # before fenced_code (25), which then renders the blocks written here
        md.preprocessors.register(_DoctestBlocks(md), "polygrad_doctest_blocks", 30)


def on_config(config):
    config.markdown_extensions.append(DoctestBlocks())
    return config

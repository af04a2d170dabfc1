"""Adapters that put the session stores under chatbot frameworks (aiogram, LangGraph).

Each adapter is its own module behind its own extra and imports its framework only when that
module is imported: `import valerie.integrations` needs nothing beyond the standard library.
"""

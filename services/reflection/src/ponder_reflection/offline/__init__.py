"""The offline provider: extractive drafts, measurable critiques and gap-fixing refinements."""

from .provider import OfflineProvider as OfflineProvider

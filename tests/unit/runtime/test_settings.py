"""load_settings: environment, overrides, OTEL_* aliases and errors that name the variable."""

import pytest

from ponder_research.settings import ResearchSettings
from ponder_runtime import ServiceSettings, SettingsError, load_settings
from ponder_runtime.settings import env_name


class PlainSettings(ServiceSettings):
    """A service without settings of its own (port read from PONDER_PORT)."""


class TestLoadSettings:
    def test_defaults_without_environment(self) -> None:
        """With no variables set, the shared defaults and the service's own port apply."""
        settings = load_settings(ResearchSettings)
        assert settings.port == 50052
        assert settings.host == "127.0.0.1"
        assert settings.address == "127.0.0.1:50052"
        assert settings.log_level == "INFO"
        assert settings.server_reflection is True
        assert settings.otlp_export_enabled is False

    def test_reads_prefixed_and_aliased_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PONDER_<FIELD> variables and a service's own aliased variables are both read."""
        monkeypatch.setenv("PONDER_HOST", "0.0.0.0")
        monkeypatch.setenv("PONDER_LOG_LEVEL", "DEBUG")
        monkeypatch.setenv("PONDER_RESEARCH_PORT", "6001")
        monkeypatch.setenv("PONDER_RESEARCH_SOURCE_TIMEOUT_SECONDS", "2.5")
        settings = load_settings(ResearchSettings)
        assert settings.address == "0.0.0.0:6001"
        assert settings.log_level == "DEBUG"
        assert settings.source_timeout_seconds == 2.5

    def test_port_of_plain_settings_comes_from_ponder_port(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without an alias, the port is read from PONDER_PORT."""
        monkeypatch.setenv("PONDER_PORT", "7001")
        assert load_settings(PlainSettings).port == 7001

    def test_override_by_field_name_wins_over_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Keyword overrides use field names, also for aliased fields, and beat the env."""
        monkeypatch.setenv("PONDER_RESEARCH_PORT", "6001")
        settings = load_settings(ResearchSettings, port=0, include_sample_library=False)
        assert settings.port == 0
        assert settings.include_sample_library is False

    def test_aliased_field_ignores_the_prefixed_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A service with its own port variable does not read the shared PONDER_PORT."""
        monkeypatch.setenv("PONDER_PORT", "7001")
        assert load_settings(ResearchSettings).port == 50052

    def test_non_numeric_port_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PONDER_RESEARCH_PORT=abc fails with a message naming exactly that variable."""
        monkeypatch.setenv("PONDER_RESEARCH_PORT", "abc")
        with pytest.raises(SettingsError) as caught:
            load_settings(ResearchSettings)
        message = str(caught.value)
        assert message.startswith("invalid setting PONDER_RESEARCH_PORT='abc': ")
        assert "valid integer" in message

    @pytest.mark.parametrize("port", ["-1", "65536", "70000"])
    def test_out_of_range_port_is_rejected(
        self, monkeypatch: pytest.MonkeyPatch, port: str
    ) -> None:
        """A port outside 0..65535 fails and names the variable and the value."""
        monkeypatch.setenv("PONDER_RESEARCH_PORT", port)
        with pytest.raises(SettingsError, match=rf"^invalid setting PONDER_RESEARCH_PORT='{port}'"):
            load_settings(ResearchSettings)

    def test_out_of_range_override_names_the_variable(self) -> None:
        """A bad keyword override is reported under the variable that sets the field."""
        with pytest.raises(SettingsError, match=r"PONDER_RESEARCH_PORT=70000: .*less than"):
            load_settings(ResearchSettings, port=70000)

    def test_every_bad_variable_is_listed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Several bad variables are reported together, separated by '; '."""
        monkeypatch.setenv("PONDER_LOG_LEVEL", "LOUD")
        monkeypatch.setenv("OTEL_SDK_DISABLED", "maybe")
        monkeypatch.setenv("PONDER_MAX_MESSAGE_BYTES", "10")
        with pytest.raises(SettingsError) as caught:
            load_settings(ResearchSettings)
        problems = str(caught.value).removeprefix("invalid setting ").split("; ")
        assert sorted(problem.split("=")[0] for problem in problems) == [
            "OTEL_SDK_DISABLED",
            "PONDER_LOG_LEVEL",
            "PONDER_MAX_MESSAGE_BYTES",
        ]

    def test_library_dirs_is_a_json_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PONDER_RESEARCH_LIBRARY_DIRS is parsed as a JSON list of paths."""
        monkeypatch.setenv("PONDER_RESEARCH_LIBRARY_DIRS", '["/tmp/a", "/tmp/b"]')
        settings = load_settings(ResearchSettings)
        assert [str(path) for path in settings.library_dirs] == ["/tmp/a", "/tmp/b"]

    def test_settings_are_frozen(self) -> None:
        """Loaded settings cannot be changed afterwards."""
        settings = load_settings(PlainSettings)
        with pytest.raises(ValueError, match="frozen"):
            settings.port = 1


class TestEnvName:
    @pytest.mark.parametrize(
        ("settings_cls", "field", "expected"),
        [
            (ResearchSettings, "port", "PONDER_RESEARCH_PORT"),
            (PlainSettings, "port", "PONDER_PORT"),
            (PlainSettings, "log_level", "PONDER_LOG_LEVEL"),
            (PlainSettings, "otel_sdk_disabled", "OTEL_SDK_DISABLED"),
            (ResearchSettings, "PONDER_EMBEDDING_ADDR", "PONDER_EMBEDDING_ADDR"),
            (PlainSettings, "OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"),
        ],
        ids=["service-prefixed", "prefixed", "shared", "otel", "alias-itself", "otel-alias-itself"],
    )
    def test_variable_of_field(
        self, settings_cls: type[ServiceSettings], field: str, expected: str
    ) -> None:
        """A field (or the alias pydantic reports errors under) maps to its variable."""
        assert env_name(settings_cls, field) == expected


class TestOtelVariables:
    def test_service_name_alias(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OTEL_SERVICE_NAME is read into otel_service_name."""
        monkeypatch.setenv("OTEL_SERVICE_NAME", "research-canary")
        assert load_settings(PlainSettings).otel_service_name == "research-canary"

    @pytest.mark.parametrize(
        ("env", "enabled"),
        [
            ({}, False),
            ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
            ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
            (
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                    "OTEL_TRACES_EXPORTER": "none",
                },
                False,
            ),
            (
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                    "OTEL_SDK_DISABLED": "true",
                },
                False,
            ),
            ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
            ({"OTEL_TRACES_EXPORTER": "otlp"}, False),
        ],
        ids=[
            "nothing-set",
            "endpoint",
            "traces-endpoint",
            "exporter-none",
            "sdk-disabled",
            "empty-endpoint",
            "exporter-without-endpoint",
        ],
    )
    def test_otlp_export_enabled(
        self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
    ) -> None:
        """Spans are exported only with an endpoint, the otlp exporter and the SDK enabled."""
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert load_settings(PlainSettings).otlp_export_enabled is enabled

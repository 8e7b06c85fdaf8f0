"""What the WeCom and WeChat Official Account channels share.

A platform calls our webhook with a signed, AES-encrypted XML message and
gives us 5 seconds to answer; the answers go out later through its HTTP API.
For every POST the channel:

1. authenticates (``crypto``): signature (403), timestamp within 5 minutes
   (403), XML, base64, padding and receive id (400);
2. drops a redelivered message (same MsgId: the platform retries when we are
   slow) with the normal acknowledgement (the channel's memory: this
   process's, or Redis shared by every process, ``CHANNEL_STATE_URL``);
3. acknowledges at once and hands the message to Rasa in the background,
   through the inbound pipeline (bot_server/pipeline/), as the conversation
   ``<prefix><platform user id>``, with a signed identity for that user in
   the metadata when IDENTITY_JWT_SECRET is set (actions/identity.py);
4. sends the bot's answers through the platform API (``api``), buttons as
   numbered lines (rendered from the domain by bot_server/pipeline/replies.py):
   a reply of just the number is the button. A human agent's message
   (``metadata.human_agent``, desk/relay.py; Rasa sends it through
   ``get_output_channel``) starts with the line ``【人工客服 <name>】``
   (``utter_channel_human_agent_label``): a text message has no other way
   to show who wrote it.

Only text messages reach Rasa. Other message types (image, voice, …) get
``utter_channel_text_only``; events (subscribe, enter_agent, …) are ignored.
Unconfigured (settings missing or invalid, logged once at startup), the
webhook answers 503 and ``make serve`` still starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import (
    Any,
    Awaitable,
    Callable,
    ClassVar,
    Dict,
    List,
    Mapping,
    Optional,
    Set,
    Type,
)

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint
from sanic.response import HTTPResponse, json, text

from actions.identity import METADATA_KEY, mint
from bot_server import rasa_patches
from bot_server.channels.common import human_agent_name
from bot_server.channels.wechat.api import ApiError, PlatformApi, split_text
from bot_server.channels.wechat.crypto import (
    CallbackError,
    InboundMessage,
    MalformedRequest,
    MessageCrypto,
    check_timestamp,
    parse_xml,
    require,
)
from bot_server.channels.wechat.memory import (
    ChannelMemory,
    LocalMemory,
    number_buttons,
)
from bot_server.channels.wechat.shared import RedisMemory
from bot_server.pipeline import replies
from bot_server.pipeline.compose import inbound_handler
from bot_server.pipeline.inbound import AgentGetter, AppAgent, Handler
from settings import RasaServerSettings, rasa_server_settings

logger = logging.getLogger(__name__)

TEXT_ONLY_RESPONSE = "utter_channel_text_only"
BUTTON_OPTION_RESPONSE = "utter_channel_button_option"
HUMAN_AGENT_LABEL_RESPONSE = "utter_channel_human_agent_label"
# Seconds the server waits, when it stops, for messages still being answered.
DRAIN_TIMEOUT_S = 10.0
# The identity is minted for one message and used while it is handled; Rasa
# stores the metadata in the tracker, so a short life limits what a leaked
# tracker could be used for.
IDENTITY_TTL_S = 300


class WeChatStyleOutput(OutputChannel):
    """Sends the bot's messages to one platform user through the API."""

    channel_name: ClassVar[str] = "wechat_style"

    @classmethod
    def name(cls) -> str:
        """The input channel's name (responses may have channel variants)."""
        return cls.channel_name

    def __init__(
        self,
        api: PlatformApi,
        sender_prefix: str,
        memory: ChannelMemory,
        agent: AgentGetter,
    ) -> None:
        self.api = api
        self.sender_prefix = sender_prefix
        self.memory = memory
        self.agent = agent

    def platform_user(self, recipient_id: str) -> Optional[str]:
        """The platform user id of a conversation id, or None if not ours."""
        if recipient_id.startswith(self.sender_prefix):
            return recipient_id[len(self.sender_prefix) :] or None
        return None

    async def send_text_message(
        self, recipient_id: str, text: str, **kwargs: Any
    ) -> None:
        """Send a text; API failures are logged, never raised into Rasa.

        A human agent's text is labelled with the agent's name first.
        """
        agent_name = human_agent_name(kwargs)
        if agent_name is not None:
            text = f"{await self.agent_label(recipient_id, agent_name)}\n{text.strip()}"
        user = self.platform_user(recipient_id)
        if user is None:
            logger.error("%s: no platform user for %s", self.name(), recipient_id)
            return
        for piece in split_text(text):
            try:
                await self.api.send_text(user, piece)
            except ApiError as error:
                logger.error("%s: sending to %s failed: %s", self.name(), user, error)
                return

    async def agent_label(self, recipient_id: str, name: str) -> str:
        """The line that says a human agent wrote the message (from the domain)."""
        label = await replies.render_text(
            self.agent(),
            HUMAN_AGENT_LABEL_RESPONSE,
            recipient_id,
            self.name(),
            name=name,
        )
        # A model trained before the response: the same words (reported once).
        return label if label is not None else f"【人工客服 {name}】"

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: List[Dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        """The text and one numbered line per button, in one message."""
        numbered = number_buttons(buttons)
        lines = []
        for button in numbered:
            line = await replies.render_text(
                self.agent(),
                BUTTON_OPTION_RESPONSE,
                recipient_id,
                self.name(),
                number=button.number,
                title=button.title,
            )
            if line is None:
                line = f"{button.number}. {button.title}"
            lines.append(line)
        user = self.platform_user(recipient_id)
        if user is not None:
            await self.memory.remember(user, numbered)
        body = "\n".join(part for part in (text, "\n".join(lines)) if part)
        await self.send_text_message(recipient_id, body)

    async def send_quick_replies(
        self,
        recipient_id: str,
        text: str,
        quick_replies: List[Dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        """Quick replies are buttons here."""
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(
        self, recipient_id: str, image: str, **kwargs: Any
    ) -> None:
        """The image's URL as text (no media upload)."""
        await self.send_text_message(recipient_id, image)

    async def send_attachment(
        self, recipient_id: str, attachment: str, **kwargs: Any
    ) -> None:
        """The attachment (a URL) as text."""
        await self.send_text_message(recipient_id, attachment)

    async def send_custom_json(
        self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any
    ) -> None:
        """Not shown: raw JSON is no message for a user."""
        logger.warning("%s: custom payload not sent to %s", self.name(), recipient_id)


class WeChatStyleInput(InputChannel):
    """Base of the WeCom and Official Account input channels.

    Subclasses set the class attributes, read their settings in ``from_settings``
    and implement the GET handshake; ``check_inbound`` may add checks.
    """

    # Which credentials of settings/ it needs ("wecom" or "wechat").
    platform: ClassVar[str] = ""
    sender_prefix: ClassVar[str] = ""
    # The body of the immediate acknowledgement.
    ack_body: ClassVar[str] = ""
    output_class: ClassVar[Type[WeChatStyleOutput]] = WeChatStyleOutput

    def __init__(
        self,
        crypto: Optional[MessageCrypto],
        api: Optional[PlatformApi],
        *,
        identity_secret: Optional[str] = None,
        agent: Optional[AgentGetter] = None,
        clock: Callable[[], float] = time.time,
        memory: Optional[ChannelMemory] = None,
    ) -> None:
        self.crypto = crypto
        self.api = api
        self.identity_secret = identity_secret
        # Tests hand in their agent; under Rasa it comes from the app (AppAgent).
        self.agent: AgentGetter = agent or AppAgent()
        self.clock = clock
        self.memory: ChannelMemory = memory or LocalMemory()
        self._tasks: Set[asyncio.Task[None]] = set()

    @property
    def configured(self) -> bool:
        """Whether the settings were complete and valid."""
        return self.crypto is not None and self.api is not None

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        """Settings come from the environment (settings/), never credentials.yml.

        credentials.yml is committed, so it holds no secret. Rasa builds its
        channels here at start-up: our patches go in first.
        """
        rasa_patches.install()
        if credentials:
            logger.warning(
                "%s: values in credentials.yml are ignored; set the environment",
                cls.name(),
            )
        settings = rasa_server_settings()
        unset = settings.unset(cls.platform)
        if unset:
            logger.info(
                "%s channel not configured (unset: %s): "
                "/webhooks/%s/webhook answers 503",
                cls.name(),
                ", ".join(unset),
                cls.name(),
            )
            return cls(None, None)
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: RasaServerSettings) -> WeChatStyleInput:
        """The channel from the platform's settings, all of them set."""
        raise NotImplementedError

    @classmethod
    def memory_of(cls, settings: RasaServerSettings) -> ChannelMemory:
        """This process's memory, or Redis when CHANNEL_STATE_URL names one."""
        url = settings.channel_state_url
        if url.startswith(("redis://", "rediss://")):
            return RedisMemory(url, cls.name())
        return LocalMemory()

    @classmethod
    def identity_secret_of(cls, settings: RasaServerSettings) -> Optional[str]:
        """The secret that signs the identities this channel mints, if any."""
        secret = settings.identity_secret
        if secret is None:
            logger.warning(
                "%s: IDENTITY_JWT_SECRET not set: messages carry no signed "
                "identity, so no account is read for them in the verified profile",
                cls.name(),
            )
        return secret

    # -- per platform -------------------------------------------------------
    def handshake(self, args: Mapping[str, str]) -> str:
        """The answer to the platform's GET URL verification."""
        raise NotImplementedError

    def check_inbound(self, message: InboundMessage, args: Mapping[str, str]) -> None:
        """Platform-specific checks of a decrypted message (MalformedRequest)."""

    # -- HTTP ---------------------------------------------------------------
    def blueprint(self, on_new_message: Handler) -> Blueprint:
        """``GET /`` health, ``GET /webhook`` handshake, ``POST /webhook`` messages."""
        handler = inbound_handler(on_new_message, self.agent)
        blueprint = Blueprint(f"{self.name()}_webhook", __name__)
        if isinstance(self.agent, AppAgent):
            self.agent.bind(blueprint)

        @blueprint.route("/", methods=["GET"])
        async def health(request: Any) -> HTTPResponse:
            return json({"status": "ok" if self.configured else "not configured"})

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Any) -> HTTPResponse:
            if not self.configured:
                return self._unconfigured()
            try:
                return text(self.handshake(query_args(request)))
            except CallbackError as error:
                return self._refuse(request, error)
            except Exception:  # a bug, but never a 500 to the platform
                logger.exception("%s: handshake failed", self.name())
                return text("bad request", status=400)

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Any) -> HTTPResponse:
            if not self.configured:
                return self._unconfigured()
            args = query_args(request)
            try:
                message = self.authenticate(args, request.body or b"")
            except CallbackError as error:
                return self._refuse(request, error)
            except Exception:  # a bug, but never a 500 to the platform
                logger.exception("%s: reading a callback failed", self.name())
                return text("bad request", status=400)
            if await self.memory.seen_before(message.dedup_key):
                logger.info(
                    "%s: %s delivered again, ignored", self.name(), message.dedup_key
                )
            else:
                self._spawn(self._dispatch(message, handler))
            return text(self.ack_body)

        async def drain(app: Any, loop: Any) -> None:
            await self.drain()

        blueprint.listener("before_server_stop")(drain)
        return blueprint

    def authenticate(self, args: Mapping[str, str], body: bytes) -> InboundMessage:
        """The decrypted message of an authentic, fresh POST (CallbackError)."""
        assert self.crypto is not None
        timestamp, nonce = query_arg(args, "timestamp"), query_arg(args, "nonce")
        msg_signature = query_arg(args, "msg_signature")
        encrypted = require(parse_xml(body), "Encrypt")
        self.crypto.verify(msg_signature, timestamp, nonce, encrypted)
        check_timestamp(timestamp, now=self.clock())
        message = InboundMessage.from_xml(self.crypto.decrypt(encrypted))
        self.check_inbound(message, args)
        return message

    def _unconfigured(self) -> HTTPResponse:
        return text(f"{self.name()} channel not configured", status=503)

    def _refuse(self, request: Any, error: CallbackError) -> HTTPResponse:
        logger.warning(
            "%s webhook refused a %s from %s: %s (%d)",
            self.name(),
            request.method,
            request.ip,
            error,
            error.status,
        )
        return text(str(error), status=error.status)

    # -- background ---------------------------------------------------------
    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Let messages being answered finish (bounded), then close the API."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        if self.api is not None:
            await self.api.close()
        await self.memory.close()

    def output_channel(self) -> WeChatStyleOutput:
        """A fresh output channel (the pipeline's guard wraps one per message)."""
        assert self.api is not None
        return self.output_class(self.api, self.sender_prefix, self.memory, self.agent)

    def get_output_channel(self) -> Optional[OutputChannel]:
        """For messages Rasa sends on its own (e.g. a human agent's, via the API)."""
        return self.output_channel() if self.configured else None

    def metadata(self, message: InboundMessage) -> Optional[Dict[str, Any]]:
        """The signed identity of the platform-verified user, if a secret is set."""
        if not self.identity_secret:
            return None
        token = mint(message.from_user, self.identity_secret, ttl_s=IDENTITY_TTL_S)
        return {METADATA_KEY: token}

    async def _dispatch(self, message: InboundMessage, handler: Handler) -> None:
        # Sanic writes the acknowledgement a loop iteration after the route
        # returns: yield first, so CPU-heavy work never delays it.
        await asyncio.sleep(0)
        sender_id = self.sender_prefix + message.from_user
        try:
            output = self.output_channel()
            if message.msg_type == "text":
                content = await self.memory.resolve(message.from_user, message.content)
                if not content.strip():
                    return
                await handler(
                    UserMessage(
                        content,
                        output,
                        sender_id,
                        input_channel=self.name(),
                        message_id=message.msg_id,
                        metadata=self.metadata(message),
                    )
                )
            elif message.msg_type == "event":
                logger.debug("%s: event %s ignored", self.name(), message.event)
            else:
                reply = await replies.render_text(
                    self.agent(), TEXT_ONLY_RESPONSE, sender_id, self.name()
                )
                if reply is None:
                    return
                await output.send_text_message(sender_id, reply)
        except Exception:
            logger.exception("%s: answering %s failed", self.name(), sender_id)


def query_args(request: Any) -> Dict[str, str]:
    """The query parameters of a request (first value of each)."""
    # Base64 never holds spaces: a '+' sent unescaped arrives as one.
    return {
        key: str(values[0]).replace(" ", "+") if key == "echostr" else str(values[0])
        for key, values in request.args.items()
        if values
    }


def query_arg(args: Mapping[str, str], name: str) -> str:
    """A required query parameter (MalformedRequest when missing)."""
    value = args.get(name, "").strip()
    if not value:
        raise MalformedRequest(f"missing {name}")
    return value

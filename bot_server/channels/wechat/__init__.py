"""The WeCom (企业微信) and WeChat Official Account (微信公众号) channels.

- ``crypto``: the platforms' callback protocol (signatures, AES, XML);
- ``api``: sending text through the platforms' HTTP APIs (token cache);
- ``memory``: replay cache and numbered buttons, bounded, in process;
- ``base``: the Rasa input and output channels both platforms share;
- ``wecom``, ``official_account``: each platform's settings and handshake.
"""

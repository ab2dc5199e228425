app-name = Tern
app-opening = 正在打开聊天记录…

## Sign-in
login-subtitle = 使用你的 XMPP（Jabber）账号登录
login-jid = 地址
login-jid-placeholder = you@example.org
login-password = 密码
login-advanced-show = 显示高级设置
login-advanced-hide = 隐藏高级设置
login-host = 服务器
login-host-placeholder = 通过 DNS 查找
login-port = 端口
login-port-placeholder = 5222
login-direct-tls = 使用直接 TLS（XEP-0368）代替 STARTTLS
login-submit = 登录
login-connecting = 正在登录…
login-error-jid = 请输入完整地址，例如 you@example.org。
login-error-password = 请输入密码。
login-error-port = 端口必须是 1 到 65535 之间的数字。

## Connection
conn-online = 在线
conn-connecting = 正在连接…
conn-retrying = { $reason } — { $seconds } 秒后重试
conn-offline = 离线
conn-offline-reason = 离线：{ $reason }
conn-retry = 立即重试
accounts-title = 账号
accounts-add = 添加账号
accounts-all = 所有账号
chat-via = { $detail } · 通过 { $account }
accounts-add-cancel = 取消
accounts-add-title = 添加账号
notification-for-account = { $title }（发给 { $account }）
accounts-remove = 移除
accounts-remove-ask = 要从 Tern 移除 { $account } 吗？它将退出登录并从这台电脑上忘记；账号本身仍在服务器上。它在这台电脑上的消息：
accounts-remove-keep = 保留
accounts-remove-delete = 删除
accounts-choose = 用哪个账号打开与 { $peer } 的聊天？
accounts-choose-with = 使用 { $account }
sign-out = 退出登录

failure-not-authorized = 地址或密码错误。
failure-account-disabled = 此帐户已被服务器停用。
failure-credentials-expired = 此帐户的密码已过期：请在服务提供方处设置新密码。
failure-temporary = 服务器暂时无法验证你的密码；Tern 稍后会重试。
failure-refused = 服务器拒绝了登录（{ $condition }）。
failure-server-said = { $reason } 服务器说明：“{ $text }”
failure-server-unproven = 服务器无法证明它知道你的密码，因此 Tern 没有登录：它可能不是你帐户所在的服务器。
preview-encrypted = 加密消息
message-encrypted = 一条加密消息（{ $kind }）。Tern 暂时无法阅读加密消息：请在能阅读的设备上查看。
failure-no-mechanism = 服务器没有提供 Tern 信任的登录方式。
failure-unknown-host = 找不到服务器（{ $host }）。
failure-unreachable = 无法连接到服务器（{ $detail }）。
failure-timeout = 服务器没有及时响应。
failure-certificate = 服务器证书不受信任（{ $detail }）。
failure-no-tls = 服务器不提供加密；Tern 不会在没有加密的情况下连接。
failure-lost = 连接已断开（{ $detail }）。
failure-protocol = 服务器发送了意外的内容（{ $detail }）。

## Presence
presence-available = 在线
presence-chat = 乐意聊天
presence-away = 离开
presence-xa = 长时间离开
presence-dnd = 忙碌
presence-offline = 离线
presence-several = 各不相同
presence-every-account = 所有账号
status-placeholder = 状态消息

## Lists
tab-chats = 聊天
tab-chats-unread = 聊天（{ $count }）
tab-contacts = 联系人（{ $count }）
chats-empty = 还没有会话。在“联系人”中选择一个人开始聊天。
contacts-empty = 你的联系人列表是空的。
contacts-add = + 添加联系人
contacts-add-jid = 地址，例如 friend@example.org
contacts-add-name = 名称（可选）
contacts-add-submit = 添加
contacts-add-cancel = 取消
contacts-add-error = 请输入一个有效的、不是你自己的地址。
contacts-request = { $jid } 想添加你为联系人。
contacts-request-to = { $jid } 想添加 { $account } 为联系人。
contacts-accept = 接受
contacts-decline = 拒绝
tab-contacts-requests = 联系人（{ $count }）· { $requests } 个新请求
contacts-ungrouped = 其他联系人
preview-you = 你：{ $text }
preview-draft = 草稿：{ $text }

## Conversation
chat-none-title = 开始聊天
chat-none-hint = 在左侧选择一个会话或联系人。
chat-empty = 还没有与 { $name } 的消息。打个招呼吧！
chat-composer-placeholder = 发消息给 { $name }
chat-send = 发送
chat-load-older = 加载更早的消息
chat-loading-older = 正在加载…
chat-today = 今天
chat-yesterday = 昨天

## Delivery
state-pending = 等待发送
state-sent = 已发送到服务器
state-delivered = 已送达
state-failed = 未送达
message-failed = 未送达：{ $reason }
message-retry = 重试
message-shortened = 已截短：完整消息共 { $total } 个字符。
message-copy-whole = 复制完整消息

## Errors that stop Tern
fatal-profile-in-use = 此配置文件已在另一个 Tern 窗口中打开。请关闭它，或使用其他 --profile 启动 Tern。
fatal-history = 无法打开消息历史：{ $error }

## Files
attach-tooltip = 发送文件
attach-title = 发送文件
drop-files = 松开即可发送给 { $name }
upload-waiting = 正在等待服务器…
upload-progress = { $percent }%
upload-cancel = 取消
upload-retry = 重试
upload-dismiss = 关闭
upload-failed = 上传失败：{ $reason }
upload-no-tls = 文件分享需要安全连接，但无法建立。
upload-no-service = 你的服务器不提供文件分享。
upload-offline = 未连接：请在上线后重试。
upload-too-large = 此文件大小为 { $size }；你的服务器只接受不超过 { $max } 的文件。
upload-too-large-plain = 你的服务器只接受不超过 { $max } 的文件。
upload-refused = 服务器拒绝了此文件：{ $reason }
paste-name = 粘贴的图片
paste-failed = 无法发送粘贴的图片：{ $reason }
preview-loading = 正在加载预览…
preview-load = 显示图片
preview-failed = 无法预览：{ $reason }
file-download = 下载
file-downloading = 正在下载… { $size }
file-downloading-of = 正在下载… { $size }（{ $percent }%）
file-download-failed = 下载失败：{ $reason }
file-open = 打开
file-show-folder = 在文件夹中显示
file-program-not-opened = 这是一个程序：Tern 不会运行它。只有在信任它时，才从文件夹中打开。
preview-file = 📎 { $name }

## Notifications
notification-room = { $nick }（{ $room }）
notification-new-message = 新消息
notification-new-messages = { $count } 条新消息
notification-more = { $preview }（另有 { $more } 条）
notification-file = 发送了一个文件
notification-open = 打开聊天

## Credentials
login-no-keyring = 没有可用的凭据存储（例如 GNOME 密钥环或 KWallet），Tern 无法保存你的密码：请输入密码登录。
login-keyring-error = 无法读取已保存的密码：{ $error }
login-remember-file = 在这台电脑上用文件保存密码
login-remember-file-warning = 该文件只有你的用户帐户可以读取，但没有加密：任何拿到它副本的人（备份、管理员）都能读出你的密码。
login-file-error = 无法把密码保存到文件：{ $error }

## Settings
settings = 设置
settings-title = 设置
settings-back = ← 返回
settings-appearance = 外观
settings-theme = 主题
settings-theme-system = 跟随系统
settings-theme-light = 浅色
settings-theme-dark = 深色
settings-language = 语言
settings-language-system = 跟随系统
settings-notifications = 通知
settings-notifications-enabled = 新消息通知
settings-notifications-enabled-hint = 在 Tern 窗口不在前台时。
settings-notifications-content = 在通知中显示消息内容
settings-notifications-content-hint = 否则只显示发送者。
settings-files = 文件
settings-download-dir = 下载文件夹
settings-download-dir-title = 下载的文件保存到哪里
settings-download-dir-choose = 选择…
settings-download-dir-default = 使用“下载”文件夹
settings-auto-images = 自动加载联系人发来的图片
settings-auto-images-hint = 仅限安全链接；联系人以外的人发来的图片在你点击后才加载。
settings-image-limit = 自动加载图片的大小上限
settings-history = 历史记录
settings-catch-up-days = 在这台电脑上首次登录时，获取
settings-catch-up-hint = 向上滚动时会从服务器加载更早的消息。
settings-catch-up-messages = 最多
settings-days = { $count ->
    [one] 最近一天
   *[other] 最近 { $count } 天
}
settings-messages = { $count } 条消息
settings-save-error = 无法保存设置：{ $error }
keyring-save-error = 无法把密码保存到凭据存储（{ $error }）：下次启动时 Tern 会再次询问密码。
dismiss = 关闭
login-remember = 在这台电脑上记住我的密码

# The connection worker hit a bug
worker-restarted = Tern 的连接因程序错误停止，已重新启动。您的消息是安全的；如果反复出现，请附上日志报告此问题。
worker-stopped = Tern 的连接反复因程序错误停止，在重新启动 Tern 之前将保持离线。您的消息是安全的；请附上日志报告此问题。

room-join = + 加入群聊
room-join-address = 群聊地址，如 team@conference.example.org
room-join-nick = 你在群聊中的昵称
room-join-password = 密码（如果群聊设有密码）
room-join-submit = 加入
room-join-invalid = 请输入群聊地址，如 team@conference.example.org。
room-joining = 正在加入…
room-not-joined = 未加入此群聊
room-people = { $count } 人
room-leave = 退出
room-role-moderators = 主持人
room-role-participants = 参与者
room-role-visitors = 访客
room-role-others = 其他
room-error-nick = 该昵称在此群聊中已被使用，请换一个。
room-error-nick-invalid = 请选择一个昵称（字母、数字、空格）。
room-error-password = 此群聊需要密码，或密码错误。
room-error-members = 此群聊仅限成员：请让所有者添加你。
room-error-banned = 你已被此群聊封禁。
room-error-not-found = 该服务上没有这个群聊。
room-error-full = 群聊已满。
room-error-unreachable = 无法连接群聊服务（{ $reason }）。
room-error-offline = 未连接：账号上线后会加入群聊。
room-error-other = 群聊拒绝了：{ $reason }
room-left-kicked = 你已被移出群聊。{ $reason }
room-left-banned = 你已被群聊封禁。{ $reason }
room-left-member = 你已被移出群聊：它现在仅限成员。
room-left-shutdown = 群聊服务已离线；恢复后会重新加入。
room-private = 通过 { $room } 的私聊
room-command-nobody = 群聊中没有名为“{ $nick }”的人。
room-command-no-address = 群聊未显示 { $nick } 的地址：请改用地址（name@example.org）。
room-command-address = “{ $address }”不是有效地址（name@example.org）。
room-command-unknown = 未知命令 /{ $command }。若要作为消息发送，请以 // 开头。
room-refused = 群聊拒绝了请求：{ $reason }
room-invited = { $by } 邀请你加入此群聊。
room-invited-reason = { $by } 邀请你加入此群聊：“{ $reason }”
room-invited-decline = 拒绝
room-browse = 公开群聊
room-create = 新建群聊
room-create-offer = 创建此群聊
room-error-exists = 此地址的群聊已存在：请换一个地址。
room-left-destroyed = 群聊已被所有者解散。{ $reason }
room-left-destroyed-moved = 群聊已被所有者解散，已迁至 { $room }。{ $reason }
room-panel-close = 关闭
room-directory-title = 公开群聊
room-directory-service = 群聊服务，例如 conference.example.org
room-directory-load = 列出群聊
room-directory-search = 按名称、地址或简介搜索
room-directory-loading = 正在向服务获取群聊列表…
room-directory-count = 共 { $count } 个群聊，显示 { $shown } 个
room-directory-failed = 该服务未列出群聊：{ $reason }
room-directory-invalid = 请输入群聊服务的地址，例如 conference.example.org。
room-directory-members = 仅限成员
room-directory-password = 需要密码
room-create-title = 创建群聊
room-create-name = 名称
room-create-address = 地址
room-create-service = 群聊服务
room-create-group = 私密群组
room-create-group-about = 供你邀请的人使用；群内成员可以看到彼此的地址。
room-create-channel = 公开频道
room-create-channel-about = 在服务上公开列出，任何人都可加入；只有主持人能看到地址。
room-create-submit = 创建
room-create-creating = 正在创建…
room-create-no-name = 请为群聊命名。
room-create-invalid = 请输入地址和群聊服务，例如 team @ conference.example.org。
room-settings = 群聊设置
room-settings-title = 群聊设置
room-settings-loading = 正在获取群聊设置…
room-settings-description = 简介
room-settings-members-only = 仅成员可进入
room-settings-public = 在服务目录中列出
room-settings-persistent = 所有人离开后仍保留
room-settings-moderated = 只有获得发言权的人可以发言
room-settings-addresses = 所有人都能看到他人的地址
room-settings-invites = 群内任何人都可以邀请他人
room-settings-password = 密码
room-settings-password-none = 无密码
room-settings-save = 保存
room-settings-saving = 正在保存…
room-settings-saved = 已保存。
room-destroy = 解散群聊
room-destroy-confirm = 所有人都将被移出，群聊将永久消失。再按一次以解散。
room-destroy-reason = 原因（会告知群内所有人）
room-error-gone = 此群聊已被所有者解散。{ $reason }
room-create-address-label = 地址
room-create-nick = 你的昵称
room-notify-all = 通知：所有消息
room-notify-mentions = 通知：提及我时
room-notify-never = 通知：从不
chat-unread-marker = 新消息

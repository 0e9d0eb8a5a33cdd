// The scanning page's section: the system's CVE allowlist (GET/PUT /api/v2.0/system/CVEAllowlist),
// which every project that reuses it (the default) exempts from its pull policy.
import { get, harbor, send } from "../../api.js";
import { h, mount } from "../../dom.js";
import { t } from "../../i18n.js";
import { allowlistEditor } from "../scanning/allowlist.js";

export async function systemAllowlistSection(panel, ctx) {
  const { data } = await get(harbor("/system/CVEAllowlist"));
  mount(panel,
    h("p", { class: "intro" }, t("scanners.allowlist_intro")),
    allowlistEditor({
      allowlist: data, editable: true,
      caption: (count) => t("scanners.allowlist_caption", { count }),
      save: async (list) => {
        await send("PUT", harbor("/system/CVEAllowlist"), { items: list.items.map((cve_id) => ({ cve_id })), expires_at: list.expires_at });
        ctx.redraw();
      },
    }));
}

"""A third-party plugin. Install it next to hookruntime (`pip install ./examples/crm_plugin`)
and `hookruntime topics` lists `crm.contact_merged` with the plugin name `crm`."""

from hookruntime import SimplePlugin, Topic

plugin = SimplePlugin(
    name="crm",
    topics=[
        Topic(
            name="crm.contact_merged",
            mode="queued",
            schema={
                "type": "object",
                "required": ["id", "merged_into"],
                "properties": {"id": {"type": "string"}, "merged_into": {"type": "string"}},
            },
            sample={"id": "contact_17", "merged_into": "contact_4"},
            scopes=("contacts",),
            description="Two CRM contacts were merged into one.",
        )
    ],
)

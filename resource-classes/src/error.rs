//! Errors from parsing Placement query strings.
//!
//! Each variant's `Display` text is the message upstream Placement puts in
//! the `detail` of its 400 response for the same mistake, so a service can
//! hand it to clients verbatim. [`ParseError::code`] gives the matching
//! `code` field (reported from microversion 1.23 on).

/// Error code Placement reports when a handler sets none.
pub const CODE_DEFAULT: &str = "placement.undefined_code";
/// Error code for a query parameter given more than once where that is illegal.
pub const CODE_DUPLICATE_QUERYPARAM: &str = "placement.query.duplicate_key";
/// Error code for a query parameter with a bad value.
pub const CODE_QUERYPARAM_BAD_VALUE: &str = "placement.query.bad_value";
/// Error code for a missing query parameter value.
pub const CODE_QUERYPARAM_MISSING_VALUE: &str = "placement.query.missing_value";

const RESOURCES_FORM: &str = "Badly formed resources parameter. Expected resources query string \
     parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.";

/// A query string that upstream Placement would answer with 400 Bad Request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The query fails Placement's JSON-schema check for this microversion
    /// (unknown parameter, missing `resources` before 1.25, bad `limit` or
    /// `group_policy`). The payload is the summary line of the schema error;
    /// upstream appends a dump of the schema and instance after it.
    #[error("Invalid query string parameters: {0}")]
    Schema(String),
    /// A `resources` value that is empty or only whitespace.
    #[error("{RESOURCES_FORM} Got: empty string.")]
    EmptyResources,
    /// A `resources` entry that is not exactly `NAME:AMOUNT`.
    #[error("{RESOURCES_FORM} Got: {0}.")]
    BadResources(String),
    /// A `resources` amount that is not an integer.
    #[error("Requested resource {class} expected positive integer amount. Got: {amount}.")]
    AmountNotInteger {
        /// Resource class as given.
        class: String,
        /// The amount text as given.
        amount: String,
    },
    /// A `resources` amount below 1 (rendered as the parsed integer).
    #[error("Requested resource {class} requires amount >= 1. Got: {amount}.")]
    AmountTooSmall {
        /// Resource class as given.
        class: String,
        /// The parsed amount, in canonical decimal form.
        amount: String,
    },
    /// `in:` trait syntax before microversion 1.39 (or in `root_required`).
    #[error(
        "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only \
         supported since microversion 1.39. Got: {0}"
    )]
    AnyTraitsUnsupported(String),
    /// An empty trait inside an `in:` list.
    #[error(
        "Invalid query string parameters: Expected 'required' parameter value of the form: \
         in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {0}"
    )]
    EmptyAnyTrait(String),
    /// A `!TRAIT` inside an `in:` list.
    #[error(
        "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not \
         support forbidden traits. Got: {0}"
    )]
    ForbiddenInAnyTraits(String),
    /// An empty trait in a plain trait list.
    #[error(
        "Invalid query string parameters: Expected 'required' parameter value of the form: \
         {expected_form}. Got an empty trait in: {value}"
    )]
    EmptyTrait {
        /// `HW_CPU_X86_VMX,!CUSTOM_MAGIC` when forbidden traits are allowed,
        /// else `HW_CPU_X86_VMX,CUSTOM_MAGIC`.
        expected_form: &'static str,
        /// The whole parameter value.
        value: String,
    },
    /// `!TRAIT` before microversion 1.22.
    #[error(
        "Invalid query string parameters: Expected 'required' parameter value of the form: \
         HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {0}"
    )]
    ForbiddenTraitsUnsupported(String),
    /// `member_of{suffix}` repeated before microversion 1.24.
    #[error("Multiple member_of{0} parameters are not supported")]
    MultipleMemberOfUnsupported(String),
    /// `member_of{suffix}=!...` before microversion 1.32.
    #[error("Forbidden member_of{0} parameters are not supported in the specified microversion")]
    ForbiddenMemberOfUnsupported(String),
    /// Several aggregates without the `in:` / `!in:` prefix.
    #[error(
        "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using \
         the valid microversion. Got: {0}"
    )]
    MemberOfNeedsIn(String),
    /// An aggregate that is not UUID-like.
    #[error(
        "Invalid query string parameters: Expected 'member_of' parameter to contain valid \
         UUID(s). Got: {0}"
    )]
    InvalidMemberOfUuid(String),
    /// An `in_tree` value that is not UUID-like.
    #[error(
        "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. \
         Got: {0}"
    )]
    InvalidInTree(String),
    /// `root_required` given more than once.
    #[error("Query parameter 'root_required' may be specified only once.")]
    DuplicateRootRequired,
    /// A trait both required and forbidden in `root_required`.
    #[error("Conflicting required and forbidden traits found in root_required: {0}")]
    ConflictingRootTraits(String),
    /// An empty suffix inside `same_subtree`.
    #[error("Empty string (unsuffixed group) can not be specified in `same_subtree` ")]
    EmptySameSubtreeSuffix,
    /// No group asks for resources (1.36+).
    #[error("There must be at least one resources or resources[$S] parameter.")]
    NoResourcesAtAll,
    /// Resourceless groups not named in any `same_subtree` (1.36+). The
    /// payload is the Python-style list of offending suffixes.
    #[error(
        "Resourceless suffixed group request should be specified in `same_subtree` query param: \
         bad group(s) - {0}."
    )]
    ResourcelessGroupNotInSameSubtree(String),
    /// `same_subtree` names a suffix with no request group (1.36+).
    #[error("Real suffixes should be specified in `same_subtree`: {bad} not found in {known}.")]
    UnknownSameSubtreeSuffix {
        /// Python-style list of unknown suffixes.
        bad: String,
        /// Python-style list of the suffixes present in the request.
        known: String,
    },
    /// `required{S}` without `resources{S}` (before 1.36).
    #[error(
        "All traits parameters must be associated with resources.  Found the following orphaned \
         traits keys: {0}"
    )]
    OrphanedTraits(String),
    /// `member_of{S}` without `resources{S}` (before 1.36).
    #[error(
        "All member_of parameters must be associated with resources. Found the following \
         orphaned member_of keys: {0}"
    )]
    OrphanedMemberOf(String),
    /// A request group without resources (before 1.36).
    #[error("All request groups must specify resources.")]
    GroupWithoutResources,
    /// No request group at all (before 1.36).
    #[error("At least one request group (`resources` or `resources{{$S}}`) is required.")]
    NoRequestGroups,
    /// A trait (or every trait of an `in:` set) both required and forbidden.
    #[error("Conflicting required and forbidden traits found in the following traits keys: {0}")]
    ConflictingTraits(String),
    /// More than one suffixed group and no `group_policy`.
    #[error(
        "The \"group_policy\" parameter is required when specifying more than one \
         \"resources{{N}}\" parameter."
    )]
    GroupPolicyRequired,
}

impl ParseError {
    /// The `code` Placement reports for this error (microversion 1.23+).
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::DuplicateRootRequired => CODE_DUPLICATE_QUERYPARAM,
            ParseError::ConflictingRootTraits(_)
            | ParseError::EmptySameSubtreeSuffix
            | ParseError::ResourcelessGroupNotInSameSubtree(_)
            | ParseError::UnknownSameSubtreeSuffix { .. } => CODE_QUERYPARAM_BAD_VALUE,
            ParseError::NoResourcesAtAll => CODE_QUERYPARAM_MISSING_VALUE,
            _ => CODE_DEFAULT,
        }
    }
}
